"""What this machine is, probed at run time (never assumed): CPU, cores, vector features, load.

Results record it so that a latency can be read with the hardware it ran on
and whether the machine was busy. CPU features differ between machines (some
have AVX-512 BF16 and VNNI, some only AVX2); code that depends on them asks
:func:`cpu_features` instead of writing them down.
"""

from __future__ import annotations

import os
import platform
from functools import cache
from pathlib import Path

FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


@cache
def cpu_features() -> tuple[str, ...]:
    """The flags of :data:`FEATURES` that ``/proc/cpuinfo`` lists (empty if unreadable)."""
    info = Path("/proc/cpuinfo")
    if not info.is_file():
        return ()
    flags = next(
        (line.split(":", 1)[1].split() for line in info.read_text().splitlines()
         if line.startswith("flags")),
        [],
    )  # fmt: skip
    return tuple(f for f in FEATURES if f in flags)


def native_bf16() -> bool:
    """Does PyTorch's oneDNN have bf16 kernels for this CPU (else bf16 is emulated, slowly)?"""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cpu_model() -> str:
    """The CPU's model name (``platform.processor()`` where ``/proc/cpuinfo`` is missing)."""
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def available_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_facts() -> dict:
    """``{"cpu", "cores", "features", "load_1min"}``: recorded next to timings."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "features": list(cpu_features()),
        "load_1min": None if load is None else round(load, 2),
    }


def describe(facts: dict) -> str:
    """One line for a report: ``2-core Intel ... (AVX2), load 0.3 at start``.

    >>> describe({"cpu": "X", "cores": 2, "features": ["avx2"], "load_1min": 1.5})
    '2-core X (avx2), 1-minute load 1.5 when the run started'
    """
    features = ", ".join(facts["features"]) or "no AVX2"
    line = f"{facts['cores']}-core {facts['cpu']} ({features})"
    if facts.get("load_1min") is not None:
        line += f", 1-minute load {facts['load_1min']} when the run started"
    if facts.get("load_1min_end") is not None:
        line += f" and {facts['load_1min_end']} when it ended"
    return line
