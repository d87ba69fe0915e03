"""Exercises: write the core from-scratch pieces yourself and have them checked.

``dl2llm exercise start <name>`` writes a starter file (signatures, docstrings,
shape comments, no bodies) into the learner workspace (``exercises/`` by
default); ``dl2llm exercise check <name>`` runs the same reference checks that
the library's own implementation passes (equivalence with the reference
library, edge cases) against that file; ``dl2llm exercise list`` shows where
each one stands. See :mod:`dl2llm.exercises.framework` for how an exercise is
declared and :mod:`dl2llm.exercises.workspace` for the learner's files.
"""

from dl2llm.exercises.registry import EXERCISES, get

__all__ = ["EXERCISES", "get"]
