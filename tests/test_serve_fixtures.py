"""Shared, built-once resources of the RAG and service tests (no tests here).

Several test files need the same small index and loaded models; a module is
imported once per process, so caching them here builds each only once per run.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

import torch

from dl2llm.rag import build_index, sample_documents
from dl2llm.rag.encoder import Encoder


@cache
def encoder() -> Encoder:
    return Encoder()


@cache
def sample_index_dir() -> Path:
    """A read-only index of the 3 sample documents (68 chunks); copy it before editing."""
    folder = Path(tempfile.mkdtemp(prefix="dl2llm-test-index-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    documents, source = sample_documents()
    build_index(documents, folder, encoder(), source=source, progress=False)
    return folder


def copy_index(target: Path) -> Path:
    """A private, editable copy of the sample index under ``target``."""
    shutil.copytree(sample_index_dir(), target, symlinks=True, dirs_exist_ok=True)
    return target


class TorchThreads:
    """Restore torch's thread count after a module that serves with one thread."""

    def __enter__(self):
        self.threads = torch.get_num_threads()
        return self

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)
