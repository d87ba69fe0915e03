"""Measuring inference speed: latency percentiles, throughput and thread counts.

*Latency* is the time one call takes; *throughput* is how many items per second a model
gets through. A service is judged by its slow calls as much as its typical ones (Dean &
Barroso, 2013, "The Tail at Scale", CACM), so we report the median (p50) and the 95th
percentile (p95) of many timed calls, after a few untimed warm-up calls that pay for
memory allocation, lazy initialisation and cold caches.

Batching trades one for the other: a batch of 32 takes longer than a batch of 1, but far
less than 32 times longer, because weights are read from memory once per batch. Threads
trade the same way: splitting a large matrix product over two cores helps, while for the
small products of one short request the cost of waking and joining a second thread can
exceed the work it takes over -- on this course's 2-core CPU, one thread is often faster at
batch 1. Both effects are measured, never assumed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Latency:
    """Percentiles of per-call wall time for calls that each process ``batch_size`` items."""

    p50_ms: float
    p95_ms: float
    batch_size: int

    @property
    def throughput(self) -> float:
        """Items per second at the median latency."""
        return self.batch_size / (self.p50_ms / 1000.0)


def time_calls(run: Callable[[], object], repeats: int, warmup: int = 2) -> list[float]:
    """Seconds taken by each of ``repeats`` calls of ``run`` (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        run()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return seconds


def latency_of(seconds: list[float], batch_size: int) -> Latency:
    """p50/p95 of a list of per-call times in seconds."""
    p50, p95 = np.percentile(np.asarray(seconds) * 1000.0, [50, 95])
    return Latency(float(p50), float(p95), batch_size)


def measure_latency(
    run: Callable[[], object], batch_size: int, repeats: int, warmup: int = 2
) -> Latency:
    """Time ``run`` (which processes ``batch_size`` items) and summarise it."""
    return latency_of(time_calls(run, repeats, warmup), batch_size)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` PyTorch intra-op threads, restoring the old count after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class VariantReport:
    """One way of running a model: speed at a small and a large batch, size and agreement.

    ``agreement`` compares the variant's outputs with the PyTorch fp32 reference: the lowest
    embedding cosine for an encoder, the share of identical next tokens for a language model.
    ``throughput`` counts ``throughput_unit`` per second at the large batch.
    """

    model: str
    variant: str
    threads: int
    small: Latency
    large: Latency
    throughput: float
    throughput_unit: str
    size_mb: float
    agreement: float
    agreement_kind: str
    max_abs_diff: float | None

    @property
    def label(self) -> str:
        return f"{self.model} {self.variant} {self.threads}t"

    def row(self) -> dict[str, float | int | str | None]:
        """A flat, JSON-ready record (latencies in ms)."""
        small, large = self.small.batch_size, self.large.batch_size
        return {
            "model": self.model,
            "variant": self.variant,
            "threads": self.threads,
            f"b{small}_p50_ms": round(self.small.p50_ms, 3),
            f"b{small}_p95_ms": round(self.small.p95_ms, 3),
            f"b{large}_p50_ms": round(self.large.p50_ms, 3),
            f"b{large}_p95_ms": round(self.large.p95_ms, 3),
            "throughput": round(self.throughput, 1),
            "throughput_unit": self.throughput_unit,
            "size_mb": round(self.size_mb, 2),
            "agreement": round(self.agreement, 5),
            "agreement_kind": self.agreement_kind,
            "max_abs_diff": None
            if self.max_abs_diff is None
            else float(f"{self.max_abs_diff:.3g}"),
        }
