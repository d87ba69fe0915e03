"""Measuring peak memory of a piece of training code (measured, never estimated).

On a GPU, PyTorch's caching allocator counts every byte it hands out:
``torch.cuda.reset_peak_memory_stats()`` then ``torch.cuda.max_memory_allocated()``
gives the exact peak of tensor memory between two points.

On the CPU there is no such counter, so :class:`PeakMemory` measures what the
operating system sees: the process's resident set size (RSS), sampled every
couple of milliseconds by a background thread, minus the RSS at the start.
Before starting, it runs the garbage collector and asks the C allocator to give
freed memory back to the system (``malloc_trim``), so that memory freed by an
earlier measurement is not silently reused and hidden. What it reports is the
growth of the process: tensors, the allocator's overhead, and anything else
the code allocated. Short spikes between two samples can be missed, so treat
differences below a few megabytes as noise.
"""

from __future__ import annotations

import ctypes
import gc
import threading
import time
from types import TracebackType

import psutil
import torch

MIB = 2**20


def release_free_memory() -> None:
    """Collect garbage and return freed heap pages to the OS (glibc only; a no-op elsewhere)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return


class PeakMemory:
    """Context manager: ``peak_bytes`` above the level at entry, CUDA or CPU (RSS).

    >>> with PeakMemory(torch.device("cpu")) as memory:
    ...     block = torch.ones(64 * MIB // 4)
    >>> memory.peak_mib > 50
    True
    """

    def __init__(self, device: torch.device | str = "cpu", interval_s: float = 0.002) -> None:
        self.device = torch.device(device)
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def peak_mib(self) -> float:
        return self.peak_bytes / MIB

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            return self
        release_free_memory()
        self._process = psutil.Process()
        self._start = self._max_rss = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._max_rss = max(self._max_rss, self._process.memory_info().rss)
            time.sleep(self.interval_s)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self._start
            return
        self._max_rss = max(self._max_rss, self._process.memory_info().rss)
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(0, self._max_rss - self._start)
