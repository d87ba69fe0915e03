"""Where things live: the repository, the results folder and the asset cache.

``DL2LLM_HOME`` (default ``~/.cache/dl2llm``) holds downloaded and converted
models and data; ``results/`` holds what the deliverables measure (full-mode records are committed;
quick runs and checkpoints are git-ignored).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "data"
RESULTS_DIR = REPO_ROOT / "results"


def home() -> Path:
    """The asset cache folder (``$DL2LLM_HOME`` or ``~/.cache/dl2llm``)."""
    return Path(os.environ.get("DL2LLM_HOME", Path.home() / ".cache" / "dl2llm")).expanduser()


def results_dir() -> Path:
    """The default results folder (``$DL2LLM_RESULTS`` or ``<repo>/results``)."""
    return Path(os.environ.get("DL2LLM_RESULTS", RESULTS_DIR))
