"""The capstone's web service: the RAG pipeline behind an HTTP API and a web page.

- :mod:`~dl2llm.serve.app` -- the FastAPI routes (``/v1/ask``, the OpenAI-compatible
  ``/v1/chat/completions``, admin document endpoints, health, readiness, metrics);
- :mod:`~dl2llm.serve.state` -- background loading, so ``/ready`` can say why not;
- :mod:`~dl2llm.serve.limits` -- body-size (413) and concurrency (429 + Retry-After) guards;
- :mod:`~dl2llm.serve.metrics` -- Prometheus counters and histograms;
- :mod:`~dl2llm.serve.schemas` -- request and response models (the OpenAPI schema);
- :mod:`~dl2llm.serve.server` -- uvicorn launch, an in-process server for tests;
- ``static/`` -- the page at ``/`` that streams answers and shows their sources.

``capstone/deployment_script.py`` (``make run``) starts it.
"""
