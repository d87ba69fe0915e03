"""What ``weeks/week4_optimization/mixed_precision_training.py`` runs: precision vs memory.

One byte-level GPT-2-architecture model (:func:`~dl2llm.efficiency.precision.byte_gpt2`)
is trained from the same initial weights on the same batches of *Botchan* in every
precision (fp32, bf16 autocast, and fp16 autocast + a dynamic ``GradScaler``, on the CPU
too), each with and without gradient checkpointing (:func:`train_precisions`).
:func:`run_metrics` turns the runs into step time, measured peak memory and distance
from fp32's loss curve, read against a *noise floor*: how far a second fp32 run from
another seed's initial weights strays from the first (median gap per step, which one
loss spike does not dominate; gradients are clipped to norm 1 in every run). The fp16
runs let the loss scale grow every few steps, so the scaler's overflows (skipped steps,
halvings) show. Then the trained fp32 model's real gradients are cast to fp16 at several
loss scales (:func:`~dl2llm.efficiency.precision.fp16_underflow`) to show why fp16 needs
scaling.

What the hardware can do is probed, not assumed (:func:`dl2llm.hardware.probe`): a
16-bit format that this CPU only emulates runs for ``emulated_steps`` steps instead.

:func:`run_lesson` does all of it and plots it; :meth:`PrecisionLesson.report` is the
printed table.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, replace
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
from dl2llm.hardware import HardwareProbe
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
    emulated_steps: int = 8  # steps of a 16-bit run that this CPU only emulates
    fp16_init_scale: float = 2.0**16  # GradScaler's default starting loss scale
    fp16_growth_interval: int = 10  # good steps before doubling (PyTorch: 2000): growth shows
    probe_matmul_size: int = 512  # matmul timed per dtype by dl2llm.hardware.probe
    clip_norm: float = 1.0  # gradient clipping (after unscaling) in every run

    @classmethod
    def quick(cls) -> PrecisionConfig:
        return cls(n_layer=2, n_embd=64, n_head=2, block_size=64, batch_size=4, steps=4,
                   emulated_steps=2, fp16_growth_interval=2, probe_matmul_size=128)  # fmt: skip

    def override(self, **sizes: int | None) -> PrecisionConfig:
        """A copy with every size that is not ``None`` replaced; checks the head count."""
        config = replace(self, **{k: v for k, v in sizes.items() if v})
        if config.n_embd % config.n_head:
            raise UsageError(f"--n-embd {config.n_embd} must be divisible by --n-head")
        return config


def choose_precisions(text: str) -> list[str]:
    """``"fp32,bf16,fp16"`` -> the precisions to run; fp32 is required (the reference curve)."""
    precisions = [p.strip() for p in text.split(",") if p.strip()]
    if "fp32" not in precisions:
        raise UsageError("--precisions must include fp32 (the reference curve)")
    unknown = sorted(set(precisions) - set(PRECISIONS))
    if unknown:
        raise UsageError(f"--precisions: unknown {unknown} (use fp32, bf16, fp16)")
    return precisions


def steps_per_precision(
    precisions: list[str], config: PrecisionConfig, device: torch.device, hardware: HardwareProbe
) -> tuple[dict[str, int], list[str]]:
    """Training steps per precision, and notes to print: emulated 16-bit CPU runs get fewer."""
    steps, notes = {}, []
    for precision in precisions:
        steps[precision] = config.steps
        if device.type == "cpu" and hardware.emulated(precision):
            steps[precision] = min(config.steps, config.emulated_steps)
            notes.append(
                f"note: this CPU emulates {precision} (no oneDNN kernels or a measured matmul "
                f"far slower than fp32's): {precision} runs {steps[precision]} steps"
            )
    return steps, notes


def run_key(precision: str, checkpointing: bool) -> str:
    """``"bf16"`` or ``"bf16_ckpt"``: the run's name in the metrics."""
    return f"{precision}_ckpt" if checkpointing else precision


def train_precisions(
    initial: nn.Module,
    batches: list[torch.Tensor],
    steps: dict[str, int],
    device: torch.device,
    config: PrecisionConfig,
) -> tuple[dict[str, PrecisionRun], nn.Module]:
    """Train a copy of ``initial`` per precision (``steps`` of it), without and with checkpointing.

    Returns the runs by :func:`run_key` and the model trained in plain fp32.
    """
    runs = {}
    scaler = {"init_scale": config.fp16_init_scale, "growth_interval": config.fp16_growth_interval,
              "clip_norm": config.clip_norm}  # fmt: skip
    for precision, n_steps in steps.items():
        for checkpointing in (False, True):
            model = copy.deepcopy(initial)
            runs[run_key(precision, checkpointing)] = train_with_precision(
                model, batches[:n_steps], precision, device, checkpointing, **scaler
            )
            if precision == "fp32" and not checkpointing:
                trained = model
    return runs, trained


def noise_ratio(reference: list[float], other: list[float], noise: list[float]) -> float:
    """``other``'s median gap to ``reference`` over the noise run's, on the steps ``other`` has.

    >>> noise_ratio([2.0, 1.0, 0.5, 0.4], [2.01, 1.01, 0.5], [2.1, 1.1, 0.4, 0.3])
    0.1
    """
    steps = len(other)
    gap = loss_agreement(reference[:steps], other)["median_abs_diff"]
    floor = loss_agreement(reference[:steps], noise[:steps])["median_abs_diff"]
    return round(gap / max(floor, 1e-12), 4)


def run_metrics(runs: dict[str, PrecisionRun], noise: PrecisionRun) -> dict[str, Any]:
    """Per run: step time, peak memory, final loss, largest gap to fp32's curve (and vs noise)."""
    reference = runs["fp32"].losses
    floor = loss_agreement(reference, noise.losses)
    metrics: dict[str, Any] = {
        "fp32_seed_noise_max_abs_loss_diff": floor["max_abs_diff"],
        "fp32_seed_noise_median_abs_loss_diff": floor["median_abs_diff"],
    }
    for key, run in runs.items():
        metrics[f"{key}_steps"] = len(run.losses)
        metrics[f"{key}_step_ms"] = round(1000 * run.median_step_s, 2)
        metrics[f"{key}_peak_mib"] = round(run.peak_memory_mib, 1)
        metrics[f"{key}_final_loss"] = round(run.losses[-1], 4)
        gaps = loss_agreement(reference, run.losses)
        metrics[f"{key}_max_abs_loss_diff"] = gaps["max_abs_diff"]
        metrics[f"{key}_median_abs_loss_diff"] = gaps["median_abs_diff"]
        if run.precision != "fp32":
            metrics[f"{key}_loss_diff_to_seed_noise"] = noise_ratio(
                reference, run.losses, noise.losses
            )
            metrics[f"{key}_step_speedup"] = round(
                runs[run_key("fp32", run.checkpointing)].median_step_s / run.median_step_s, 3
            )
        if run.final_loss_scale is not None:
            metrics[f"{key}_skipped_steps"] = run.skipped_steps
            metrics[f"{key}_final_loss_scale"] = run.final_loss_scale
            metrics[f"{key}_scale_history"] = run.scale_history
    metrics["checkpointing_memory_ratio"] = round(
        runs["fp32_ckpt"].peak_memory_mib / max(runs["fp32"].peak_memory_mib, 1e-9), 3
    )
    return metrics


def underflow_metrics(
    underflow: list[dict], grads: torch.Tensor, fp16: PrecisionRun | None
) -> dict:
    """Headline shares of :func:`fp16_underflow`'s rows, and at the fp16 run's final scale."""
    by_scale = {row["scale"]: row for row in underflow}
    metrics: dict[str, Any] = {
        "fp16_underflow_share_unscaled": by_scale[1.0]["underflow_share"],
        "fp16_underflow_share_scale_2e16": by_scale[2.0**16]["underflow_share"],
        "fp16_overflow_share_scale_2e32": by_scale[2.0**32]["overflow_share"],
    }
    if fp16 is not None:
        final = fp16_underflow(grads, [fp16.final_loss_scale])[0]
        metrics["fp16_underflow_share_at_final_scale"] = final["underflow_share"]
        metrics["fp16_overflow_share_at_final_scale"] = final["overflow_share"]
    return {**metrics, "fp16_underflow": underflow}


def plot_precisions(
    runs: dict[str, PrecisionRun],
    noise: PrecisionRun,
    underflow: list[dict],
    init_scale: float,
    path: Path,
) -> Path:
    """Loss curves, peak memory per run, GradScaler's scale, fp16 gradient shares per scale."""
    fig, (curves, memory, scaler, scales) = plt.subplots(1, 4, figsize=(21, 4.5))
    for key, run in runs.items():
        curves.plot(run.losses, label=key, linestyle="--" if run.checkpointing else "-")
    curves.plot(noise.losses, label="fp32, other seed", color="grey", linestyle=":")
    curves.set(xlabel="step", ylabel="training loss", title="loss curves (same data)")
    curves.legend()
    memory.bar(list(runs), [run.peak_memory_mib for run in runs.values()], color="tab:orange")
    memory.set(ylabel="peak memory above start (MiB)", title="measured peak memory")
    memory.tick_params(axis="x", rotation=30)
    for key, run in runs.items():
        if run.scale_history:
            used = [init_scale, *run.scale_history[:-1]]  # the scale each step ran with
            steps = range(1, len(used) + 1)
            scaler.step(steps, used, where="post", label=key)
            pairs = zip(steps, used, run.scale_history, strict=True)
            skipped = [(step, scale) for step, scale, after in pairs if after < scale]
            scaler.plot([s for s, _ in skipped], [u for _, u in skipped], "x", color="tab:red")
    scaler.set_yscale("log", base=2)
    scaler.set(xlabel="step (x: skipped, inf/NaN gradients)", ylabel="loss scale S used",
               title="fp16 GradScaler: halves on inf, grows back")  # fmt: skip
    if scaler.get_legend_handles_labels()[0]:
        scaler.legend()
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


def scale_changes(history: list[float], init_scale: float) -> str:
    """GradScaler's scale over a run, as its changes: ``2^24 -> 2^23 at step 1 (skipped)``.

    >>> scale_changes([2.0**3, 2.0**2, 2.0**2, 2.0**3], 2.0**3)
    '2^3 -> 2^2 at step 2 (skipped) -> 2^3 at step 4'
    """
    parts, previous = [f"2^{math.log2(init_scale):g}"], init_scale
    for step, scale in enumerate(history, start=1):
        if scale != previous:
            parts.append(
                f"2^{math.log2(scale):g} at step {step}"
                + (" (skipped)" if scale < previous else "")
            )
            previous = scale
    return " -> ".join(parts)


@dataclass
class PrecisionLesson:
    """What :func:`run_lesson` measured and wrote."""

    metrics: dict[str, Any]
    config: dict[str, Any]  # as the results JSON records it
    artifacts: list[str]  # file names in the output folder
    runs: dict[str, PrecisionRun]
    noise: PrecisionRun  # fp32 from another seed's initial weights: the noise floor
    underflow: list[dict]  # fp16_underflow's rows, one per loss scale
    n_gradients: int  # gradients cast to fp16

    def report(self) -> str:
        """The table of runs (gaps next to the seed-noise floor), GradScaler, fp16 casts."""
        reference, noise = self.runs["fp32"].losses, self.noise.losses
        floor = loss_agreement(reference, noise)
        lines = [
            f"\nnoise floor: fp32 from another seed's init, |dloss| per step vs fp32: median "
            f"{floor['median_abs_diff']:.2e}, max {floor['max_abs_diff']:.2e}",
            f"{'run':<10} {'steps':>5} {'step ms':>9} {'peak MiB':>9} {'final loss':>10} "
            f"{'median |dloss|':>14} {'/ noise':>8} {'max |dloss|':>11}",
        ]
        for key, run in self.runs.items():
            gap = loss_agreement(reference, run.losses)
            lines.append(
                f"{key:<10} {len(run.losses):>5} {1000 * run.median_step_s:>9.1f} "
                f"{run.peak_memory_mib:>9.1f} {run.losses[-1]:>10.4f} "
                f"{gap['median_abs_diff']:>14.2e} {noise_ratio(reference, run.losses, noise):>8.3f}"
                f" {gap['max_abs_diff']:>11.2e}"
            )
        for key, run in self.runs.items():
            if run.scale_history:
                init = self.config["fp16_init_scale"]
                lines.append(f"{key} GradScaler ({run.skipped_steps} steps skipped): "
                             f"{scale_changes(run.scale_history, init)}")  # fmt: skip
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
    config: PrecisionConfig,
    precisions: list[str],
    device: torch.device,
    seed: int,
    out: Path,
    hardware: HardwareProbe,
) -> PrecisionLesson:
    """Train in each precision and fp32 from another seed, cast fp32 gradients to fp16, plot.

    ``hardware`` (:func:`dl2llm.hardware.probe`) decides which 16-bit runs are shortened.
    """
    batches = byte_batches(
        lm_splits()["train"], config.batch_size, config.block_size, config.steps, seed
    )  # each (batch_size, block_size)
    initial = byte_gpt2(config.n_layer, config.n_embd, config.n_head, config.block_size, seed)
    steps, notes = steps_per_precision(precisions, config, device, hardware)
    for note in notes:
        print(note)
    runs, trained = train_precisions(initial, batches, steps, device, config)
    other = byte_gpt2(config.n_layer, config.n_embd, config.n_head, config.block_size, seed + 1)
    noise = train_with_precision(other, batches, "fp32", device, clip_norm=config.clip_norm)
    grads = model_gradients(trained.to(device).float(), batches[-1].to(device)).cpu()  # (P,)
    underflow = fp16_underflow(grads, LOSS_SCALES)

    metrics: dict[str, Any] = {
        "device": str(device),
        "parameters": count_parameters(initial).total,
        "hardware": hardware.as_dict(),
    }
    if hardware.speedup("bf16") is not None:
        metrics["bf16_matmul_speedup"] = round(hardware.speedup("bf16"), 3)
        metrics["fp16_matmul_speedup"] = round(hardware.speedup("fp16"), 3)
    metrics.update(run_metrics(runs, noise))
    metrics.update(underflow_metrics(underflow, grads, runs.get("fp16")))
    metrics["loss_curves"] = {key: run.losses for key, run in runs.items()}
    metrics["loss_curves"]["fp32_other_seed"] = noise.losses
    artifacts = [f"{NAME}_curves.png"]
    out.mkdir(parents=True, exist_ok=True)
    plot_precisions(runs, noise, underflow, config.fp16_init_scale, out / artifacts[0])
    saved_config = {**asdict(config), "precisions": precisions, "device": str(device)}
    return PrecisionLesson(metrics, saved_config, artifacts, runs, noise, underflow, grads.numel())
