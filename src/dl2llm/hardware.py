"""What this machine is, probed at run time (never assumed): CPU, vector features, 16-bit kernels.

Results record it so that a latency can be read with the hardware it ran on
and whether the machine was busy. CPU features differ between machines of the
same kind (some have AVX-512 BF16, VNNI and AMX, some only AVX2), and whether
16-bit or int8 arithmetic is fast depends on them:

- **bf16** matmuls are fast on CPUs with ``avx512_bf16`` or ``amx_bf16``; without
  them oneDNN emulates bf16 and it can be hundreds of times slower than fp32.
- **fp16** needs ``avx512_fp16`` or AMX-FP16 on a CPU (else it is emulated too).
- **int8** dot products are fast with VNNI (``avx512_vnni``, ``avx_vnni``) or ``amx_int8``.

Code that depends on them asks :func:`probe` (one :class:`HardwareProbe`: CPU
flags, PyTorch's oneDNN 16-bit support, CUDA, and optionally *measured* matmul
throughput per dtype) and prints what it found instead of writing it down.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

FEATURES = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
MATMUL_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # torch dtype names


def parse_cpu_flags(cpuinfo: str) -> tuple[str, ...]:
    """The flags of :data:`FEATURES` on the first ``flags`` line of a ``/proc/cpuinfo`` text.

    >>> parse_cpu_flags("model name : X\\nflags : fpu sse avx2 avx512f avx512_bf16 amx_int8\\n")
    ('avx2', 'avx512f', 'avx512_bf16', 'amx_int8')
    >>> parse_cpu_flags("flags\\t\\t: fpu avx avx2 fma\\nflags : avx512f")
    ('avx2',)
    >>> parse_cpu_flags("processor : 0")
    ()
    """
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags = set(value.split())
            return tuple(f for f in FEATURES if f in flags)
    return ()


@cache
def cpu_features() -> tuple[str, ...]:
    """The flags of :data:`FEATURES` that ``/proc/cpuinfo`` lists (empty if unreadable)."""
    info = Path("/proc/cpuinfo")
    return parse_cpu_flags(info.read_text()) if info.is_file() else ()


def native_bf16() -> bool:
    """Does PyTorch's oneDNN have bf16 kernels for this CPU (else bf16 is emulated, slowly)?"""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def native_fp16() -> bool:
    """Does PyTorch's oneDNN have fp16 kernels for this CPU (else fp16 is emulated, slowly)?"""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())


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


def matmul_gflops(precision: str, size: int = 512, min_time_s: float = 0.2) -> float:
    """Measured GFLOP/s of a ``(size, size) @ (size, size)`` CPU matmul in ``precision``.

    One warm-up product, then products until ``min_time_s`` has passed (at least
    three); the fastest one counts, so that other processes on a busy machine
    slow the estimate less.
    """
    import torch

    dtype = getattr(torch, MATMUL_DTYPES[precision])
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)  # (N, N)
    torch.mm(a, b)
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - started < min_time_s:
        begin = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - begin)
    return 2 * size**3 / min(times) / 1e9


@dataclass(frozen=True)
class HardwareProbe:
    """What :func:`probe` found. ``matmul_gflops`` is empty unless it was measured."""

    cpu: str
    cores: int
    cpu_flags: tuple[str, ...]  # the :data:`FEATURES` this CPU has
    mkldnn_bf16: bool  # oneDNN has bf16 kernels for this CPU
    mkldnn_fp16: bool  # oneDNN has fp16 kernels for this CPU
    cuda_name: str | None = None  # the first CUDA device, if any
    cuda_bf16: bool = False
    matmul_gflops: tuple[tuple[str, float], ...] = ()  # (("fp32", 139.0), ("bf16", 360.0))

    @property
    def int8_dot_product(self) -> bool:
        """VNNI or AMX-INT8: int8 matmuls run on dedicated instructions."""
        return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(self.cpu_flags))

    def speedup(self, precision: str) -> float | None:
        """Measured matmul throughput of ``precision`` over fp32's (None if not measured).

        >>> HardwareProbe("X", 2, (), True, False, matmul_gflops=(("fp32", 100.0),
        ...               ("bf16", 250.0))).speedup("bf16")
        2.5
        """
        gflops = dict(self.matmul_gflops)
        if precision not in gflops or "fp32" not in gflops:
            return None
        return gflops[precision] / gflops["fp32"]

    def emulated(self, precision: str, slowdown: float = 10.0) -> bool:
        """Is ``precision`` slow on this CPU: no oneDNN kernels, or measured ``slowdown`` x fp32?

        >>> avx2 = HardwareProbe("X", 2, ("avx2",), False, False,
        ...                      matmul_gflops=(("fp32", 135.0), ("bf16", 0.3)))
        >>> avx2.emulated("bf16"), avx2.emulated("fp32")
        (True, False)
        """
        if precision == "fp32":
            return False
        kernels = self.mkldnn_bf16 if precision == "bf16" else self.mkldnn_fp16
        speedup = self.speedup(precision)
        return not kernels or (speedup is not None and speedup < 1 / slowdown)

    def as_dict(self) -> dict:
        """For a results JSON: flags as a list, GFLOP/s rounded, by dtype."""
        facts = asdict(self)
        facts["cpu_flags"] = list(self.cpu_flags)
        facts["matmul_gflops"] = {k: round(v, 2) for k, v in self.matmul_gflops}
        return facts

    def report(self) -> str:
        """A few printable lines: what was found, and what it means for 16-bit and int8.

        >>> print(HardwareProbe("X", 2, ("avx2",), False, False).report())
        CPU: 2-core X; flags: avx2
          bf16: emulated (no oneDNN bf16 kernels); fp16: emulated (no oneDNN fp16 kernels)
          int8 dot products: no VNNI/AMX; CUDA: none
        """
        flags = ", ".join(self.cpu_flags) or "none of interest"
        kinds = [
            f"{name}: " + ("oneDNN kernels" if ok else f"emulated (no oneDNN {name} kernels)")
            for name, ok in (("bf16", self.mkldnn_bf16), ("fp16", self.mkldnn_fp16))
        ]
        int8 = "VNNI/AMX" if self.int8_dot_product else "no VNNI/AMX"
        cuda = f"{self.cuda_name} (bf16: {self.cuda_bf16})" if self.cuda_name else "none"
        lines = [
            f"CPU: {self.cores}-core {self.cpu}; flags: {flags}",
            f"  {'; '.join(kinds)}",
            f"  int8 dot products: {int8}; CUDA: {cuda}",
        ]
        if self.matmul_gflops:
            measured = ", ".join(f"{k} {v:.1f}" for k, v in self.matmul_gflops)
            lines.append(f"  measured CPU matmul GFLOP/s: {measured}")
        return "\n".join(lines)


def probe(matmul_size: int = 0) -> HardwareProbe:
    """Probe this machine; with ``matmul_size > 0`` also time fp32/bf16/fp16 CPU matmuls.

    The timing takes about 0.2 s per dtype at 512 (longer where a dtype is emulated).
    """
    import torch

    cuda = torch.cuda.is_available()
    gflops = tuple(
        (name, matmul_gflops(name, matmul_size)) for name in MATMUL_DTYPES
    ) if matmul_size > 0 else ()  # fmt: skip
    return HardwareProbe(
        cpu=cpu_model(),
        cores=available_cores(),
        cpu_flags=cpu_features(),
        mkldnn_bf16=native_bf16(),
        mkldnn_fp16=native_fp16(),
        cuda_name=torch.cuda.get_device_name(0) if cuda else None,
        cuda_bf16=cuda and torch.cuda.is_bf16_supported(),
        matmul_gflops=gflops,
    )


def current_load() -> float | None:
    """The 1-minute load average, rounded (``None`` where the OS has none)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def machine_facts() -> dict:
    """``{"cpu", "cores", "features", "load_1min"}``: recorded next to timings."""
    return {
        "cpu": cpu_model(),
        "cores": available_cores(),
        "features": list(cpu_features()),
        "load_1min": current_load(),
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
