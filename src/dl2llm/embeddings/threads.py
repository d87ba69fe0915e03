"""Run small-tensor training loops on one CPU thread.

Word-vector training is thousands of tiny gathers and updates; with several
threads PyTorch spends more time coordinating them than computing (here, on 2
shared cores, one thread was ~30x faster).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_thread() -> Iterator[None]:
    """Set ``torch.set_num_threads(1)`` inside the block and restore it afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
