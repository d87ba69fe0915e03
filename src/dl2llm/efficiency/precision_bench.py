"""Training-step speed and memory of fp32, bf16 and fp16 (+ GradScaler), against fp32.

What ``benchmarks/bench_precision.py`` measures. The week 4 lesson
(:mod:`dl2llm.efficiency.precision_lesson`) asks whether 16-bit training *agrees* with
fp32; this asks whether it is *faster* and *smaller* on the machine at hand, which depends
on the hardware (bf16/fp16 matrix units on a GPU, AVX-512 BF16/AMX on some CPUs, emulation
on others): so it is measured, never assumed (Micikevicius et al., 2018, "Mixed Precision
Training", ICLR).

Every precision trains the same byte-level GPT-2 (:func:`~dl2llm.efficiency.precision.byte_gpt2`)
on the same batches from the same initial weights. A second fp32 run from another seed is the
noise floor for the loss gaps. Ratios are against fp32 in the same run:
``<precision>_speedup`` = fp32's median step time / the precision's, and
``<precision>_memory_ratio`` = its peak memory / fp32's.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from dl2llm.efficiency.precision import (
    PrecisionRun,
    byte_batches,
    byte_gpt2,
    loss_agreement,
    train_with_precision,
)

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class PrecisionBenchConfig:
    """The model and batches timed (``quick()``: a tiny model for CI)."""

    n_layer: int = 6
    n_embd: int = 384
    n_head: int = 6
    block_size: int = 256
    batch_size: int = 32
    steps: int = 200

    @classmethod
    def quick(cls) -> PrecisionBenchConfig:
        return cls(n_layer=1, n_embd=32, n_head=2, block_size=32, batch_size=2, steps=6)

    def to_dict(self) -> dict:
        return asdict(self)


def repository_text(root: Path) -> str:
    """The project's own README and library sources: text that is present everywhere."""
    files = [root / "README.md", *sorted((root / "src" / "dl2llm").rglob("*.py"))]
    return "\n".join(path.read_text(encoding="utf-8") for path in files if path.is_file())


def compare_precisions(
    config: PrecisionBenchConfig, text: str, device: torch.device, seed: int = 0
) -> tuple[dict[str, float], dict[str, PrecisionRun]]:
    """Train fp32 (twice: ``seed`` and ``seed + 1``), bf16 and fp16; return metrics and runs."""
    shape = (config.n_layer, config.n_embd, config.n_head, config.block_size)
    batches = byte_batches(text, config.batch_size, config.block_size, config.steps, seed)
    model = byte_gpt2(*shape, seed=seed)
    runs = {
        name: train_with_precision(copy.deepcopy(model), batches, name, device, progress=False)
        for name in PRECISIONS
    }
    other_seed = train_with_precision(
        byte_gpt2(*shape, seed=seed + 1), batches, "fp32", device, progress=False
    )
    return precision_metrics(runs, other_seed), runs


def precision_metrics(runs: dict[str, PrecisionRun], fp32_other_seed: PrecisionRun) -> dict:
    """Speed-ups and memory ratios against fp32, and loss gaps against the seed-noise floor.

    >>> def run(name, step_s, mib, losses):
    ...     return PrecisionRun(name, False, losses, [step_s] * 3, mib)
    >>> runs = {"fp32": run("fp32", 2.0, 100.0, [3.0, 2.0]),
    ...         "bf16": run("bf16", 0.5, 60.0, [3.0, 2.1])}
    >>> m = precision_metrics(runs, run("fp32", 2.0, 100.0, [3.0, 2.2]))
    >>> m["bf16_speedup"], m["bf16_memory_ratio"], m["fp32_seed_noise_median_abs_loss_diff"]
    (4.0, 0.6, 0.1...)
    """
    fp32 = runs["fp32"]
    noise = loss_agreement(fp32.losses, fp32_other_seed.losses)["median_abs_diff"]
    metrics: dict[str, float] = {
        "fp32_median_step_ms": 1000 * fp32.median_step_s,
        "fp32_peak_mib": fp32.peak_memory_mib,
        "fp32_seed_noise_median_abs_loss_diff": noise,
    }
    for name, run in runs.items():
        if name == "fp32":
            continue
        gap = loss_agreement(fp32.losses, run.losses)["median_abs_diff"]
        metrics[f"{name}_median_step_ms"] = 1000 * run.median_step_s
        metrics[f"{name}_speedup"] = fp32.median_step_s / run.median_step_s
        metrics[f"{name}_memory_ratio"] = run.peak_memory_mib / fp32.peak_memory_mib
        metrics[f"{name}_median_abs_loss_diff"] = gap
        metrics[f"{name}_loss_diff_to_seed_noise"] = gap / noise if noise else float("inf")
        if name == "fp16":
            metrics["fp16_skipped_steps"] = run.skipped_steps
    return metrics
