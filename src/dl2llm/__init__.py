"""dl2llm: from neural-network basics to a deployed, evaluated LLM application.

The library holds the lessons (one readable module per concept); the deliverable
scripts under ``weeks/`` and ``capstone/`` are thin wrappers around it.
"""

__version__ = "0.1.0"
