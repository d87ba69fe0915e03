"""Shared test settings: offline, deterministic, small."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
# Small matmuls are much faster on one thread here, and CI runs one test at a time.
os.environ.setdefault("OMP_NUM_THREADS", "1")
