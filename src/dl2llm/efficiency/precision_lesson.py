"""What ``weeks/week4_optimization/mixed_precision_training.py`` runs: precision vs memory.

One byte-level GPT-2-architecture model (:func:`~dl2llm.efficiency.precision.byte_gpt2`)
is trained from the same initial weights on the same batches of *Botchan* in every
precision (fp32, bf16 autocast, and fp16 autocast + ``GradScaler`` on CUDA), each with
and without gradient checkpointing (:func:`train_precisions`). :func:`run_metrics` turns
the runs into step time, measured peak memory and distance from fp32's loss curve.
Then the trained fp32 model's real gradients are cast to fp16 at several loss scales
(:func:`~dl2llm.efficiency.precision.fp16_underflow`) to show why fp16 needs scaling.

:func:`run_lesson` does all of it and plots it; :meth:`PrecisionLesson.report` is the
printed table.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dl2llm.data import lm_splits
from dl2llm.efficiency.precision import (
    PRECISIONS,
    PrecisionRun,
    byte_batches,
    byte_gpt2,
    fp16_underflow,
    loss_agreement,
    model_gradients,
    train_with_precision,
)
from dl2llm.finetune import count_parameters
from dl2llm.hardware import native_bf16
from dl2llm.plots import plt, save_figure
from dl2llm.runtime import UsageError

NAME = "mixed_precision_training"
LOSS_SCALES = [1.0, 2.0**8, 2.0**16, 2.0**24, 2.0**32]


@dataclass
class PrecisionConfig:
    """Model and training sizes of the week 4 precision runs (``quick()`` shrinks them)."""

    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 4
    block_size: int = 256  # bytes per sequence
    batch_size: int = 8
    steps: int = 60  # training steps per run

    @classmethod
    def quick(cls) -> PrecisionConfig:
        return cls(n_layer=2, n_embd=64, n_head=2, block_size=64, batch_size=4, steps=4)

    def override(self, **sizes: int | None) -> PrecisionConfig:
        """A copy with every size that is not ``None`` replaced; checks the head count."""
        config = PrecisionConfig(**{**asdict(self), **{k: v for k, v in sizes.items() if v}})
        if config.n_embd % config.n_head:
            raise UsageError(f"--n-embd {config.n_embd} must be divisible by --n-head")
        return config


def choose_precisions(text: str, device: torch.device) -> tuple[list[str], list[str]]:
    """``"fp32,bf16,fp16"`` -> the precisions that run on ``device``, and notes to print.

    fp32 is required (the reference curve); fp16 + ``GradScaler`` is dropped off CUDA.
    """
    precisions = [p.strip() for p in text.split(",") if p.strip()]
    if "fp32" not in precisions:
        raise UsageError("--precisions must include fp32 (the reference curve)")
    unknown = sorted(set(precisions) - set(PRECISIONS))
    if unknown:
        raise UsageError(f"--precisions: unknown {unknown} (use fp32, bf16, fp16)")
    notes = []
    if device.type != "cuda" and "fp16" in precisions:
        notes.append("note: fp16 + GradScaler training needs CUDA; skipped on this device")
        precisions.remove("fp16")
    if device.type == "cpu" and not native_bf16():
        notes.append("note: this CPU has no native bf16: bf16 runs are emulated (slow)")
    return precisions, notes


def run_key(precision: str, checkpointing: bool) -> str:
    """``"bf16"`` or ``"bf16_ckpt"``: the run's name in the metrics."""
    return f"{precision}_ckpt" if checkpointing else precision


def train_precisions(
    initial: nn.Module, batches: list[torch.Tensor], precisions: list[str], device: torch.device
) -> tuple[dict[str, PrecisionRun], nn.Module]:
    """Train a copy of ``initial`` per precision, without and with checkpointing.

    Returns the runs by :func:`run_key` and the model trained in plain fp32.
    """
    runs = {}
    for precision in precisions:
        for checkpointing in (False, True):
            model = copy.deepcopy(initial)
            runs[run_key(precision, checkpointing)] = train_with_precision(
                model, batches, precision, device, checkpointing
            )
            if precision == "fp32" and not checkpointing:
                trained = model
    return runs, trained


def run_metrics(runs: dict[str, PrecisionRun]) -> dict[str, Any]:
    """Per run: median step time, peak memory, final loss, largest gap to fp32's curve."""
    reference = runs["fp32"].losses
    metrics: dict[str, Any] = {}
    for key, run in runs.items():
        metrics[f"{key}_step_ms"] = round(1000 * run.median_step_s, 2)
        metrics[f"{key}_peak_mib"] = round(run.peak_memory_mib, 1)
        metrics[f"{key}_final_loss"] = round(run.losses[-1], 4)
        metrics[f"{key}_max_abs_loss_diff"] = loss_agreement(reference, run.losses)["max_abs_diff"]
        if run.final_loss_scale is not None:
            metrics[f"{key}_skipped_steps"] = run.skipped_steps
            metrics[f"{key}_final_loss_scale"] = run.final_loss_scale
    metrics["checkpointing_memory_ratio"] = round(
        runs["fp32_ckpt"].peak_memory_mib / max(runs["fp32"].peak_memory_mib, 1e-9), 3
    )
    return metrics


def underflow_metrics(underflow: list[dict]) -> dict[str, Any]:
    """The headline shares of :func:`fp16_underflow`'s rows, and the rows themselves."""
    by_scale = {row["scale"]: row for row in underflow}
    return {
        "fp16_underflow_share_unscaled": by_scale[1.0]["underflow_share"],
        "fp16_underflow_share_scale_2e16": by_scale[2.0**16]["underflow_share"],
        "fp16_overflow_share_scale_2e32": by_scale[2.0**32]["overflow_share"],
        "fp16_underflow": underflow,
    }


def plot_precisions(runs: dict[str, PrecisionRun], underflow: list[dict], path: Path) -> Path:
    """Loss curves, peak memory per run, and fp16 gradient shares per loss scale."""
    fig, (curves, memory, scales) = plt.subplots(1, 3, figsize=(16, 4.5))
    for key, run in runs.items():
        curves.plot(run.losses, label=key, linestyle="--" if run.checkpointing else "-")
    curves.set(xlabel="step", ylabel="training loss", title="loss curves (same data, same init)")
    curves.legend()
    memory.bar(list(runs), [run.peak_memory_mib for run in runs.values()], color="tab:orange")
    memory.set(ylabel="peak memory above start (MiB)", title="measured peak memory")
    memory.tick_params(axis="x", rotation=30)
    labels = [f"2^{int(row['scale']).bit_length() - 1}" for row in underflow]
    positions = range(len(labels))
    for offset, (kind, label) in enumerate(
        [("underflow", "underflow to 0"), ("subnormal", "subnormal (precision lost)"),
         ("overflow", "overflow to inf")]
    ):  # fmt: skip
        shares = [100 * row[f"{kind}_share"] for row in underflow]
        scales.bar([p + 0.27 * (offset - 1) for p in positions], shares, width=0.27, label=label)
    scales.set_xticks(list(positions), labels)
    scales.set(
        yscale="log", xlabel="loss scale S", ylabel="% of gradients (log)", title="fp16 gradients"
    )
    scales.legend()
    fig.tight_layout()
    return save_figure(fig, path, dpi=110, bbox_inches=None)


@dataclass
class PrecisionLesson:
    """What :func:`run_lesson` measured and wrote."""

    metrics: dict[str, Any]
    config: dict[str, Any]  # as the results JSON records it
    artifacts: list[str]  # file names in the output folder
    runs: dict[str, PrecisionRun]
    underflow: list[dict]  # fp16_underflow's rows, one per loss scale
    n_gradients: int  # gradients cast to fp16

    def report(self) -> str:
        """The table of runs, then the fp16 casts per loss scale."""
        reference = self.runs["fp32"].losses
        lines = [f"\n{'run':<10} {'step ms':>9} {'peak MiB':>9} {'final loss':>10} "
                 f"{'max |dloss|':>11}"]  # fmt: skip
        for key, run in self.runs.items():
            gap = loss_agreement(reference, run.losses)["max_abs_diff"]
            lines.append(
                f"{key:<10} {1000 * run.median_step_s:>9.1f} {run.peak_memory_mib:>9.1f} "
                f"{run.losses[-1]:>10.4f} {gap:>11.2e}"
            )
        lines.append(f"\nfp16 casts of {self.n_gradients:,} real fp32 gradients (after training):")
        lines.append(
            f"{'scale S':>10} {'underflow %':>12} {'subnormal %':>12} {'overflow %':>11} "
            f"{'rel. error':>11}"
        )
        for row in self.underflow:
            error = "-" if row["relative_error"] is None else f"{row['relative_error']:.2e}"
            lines.append(
                f"{row['scale']:>10.0f} {100 * row['underflow_share']:>12.3f} "
                f"{100 * row['subnormal_share']:>12.3f} {100 * row['overflow_share']:>11.3f} "
                f"{error:>11}"
            )
        return "\n".join(lines)


def run_lesson(
    config: PrecisionConfig, precisions: list[str], device: torch.device, seed: int, out: Path
) -> PrecisionLesson:
    """Train in each precision, measure fp16 casts of the fp32 gradients, plot to ``out``."""
    batches = byte_batches(
        lm_splits()["train"], config.batch_size, config.block_size, config.steps, seed
    )  # each (batch_size, block_size)
    initial = byte_gpt2(config.n_layer, config.n_embd, config.n_head, config.block_size, seed)
    runs, trained = train_precisions(initial, batches, precisions, device)
    grads = model_gradients(trained.to(device).float(), batches[-1].to(device)).cpu()  # (P,)
    underflow = fp16_underflow(grads, LOSS_SCALES)

    metrics: dict[str, Any] = {
        "device": str(device),
        "parameters": count_parameters(initial).total,
    }
    metrics.update(run_metrics(runs))
    metrics.update(underflow_metrics(underflow))
    metrics["loss_curves"] = {key: run.losses for key, run in runs.items()}
    artifacts = [f"{NAME}_curves.png"]
    out.mkdir(parents=True, exist_ok=True)
    plot_precisions(runs, underflow, out / artifacts[0])
    saved_config = {**asdict(config), "precisions": precisions, "device": str(device)}
    return PrecisionLesson(metrics, saved_config, artifacts, runs, underflow, grads.numel())
