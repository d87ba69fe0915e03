"""Mixed precision and gradient checkpointing: what they save, and what they cost in accuracy.

Trains the same GPT-2-architecture byte-level language model (same initial
weights, same batches of *Botchan*) in fp32, in bf16 autocast and, on a CUDA
GPU, in fp16 autocast with a dynamic ``GradScaler`` -- each with and without
gradient checkpointing. For every run it reports the median step time, the
measured peak memory (process RSS growth on CPU, ``max_memory_allocated`` on
CUDA) and how far the loss curve strays from fp32's. Then it shows why fp16
needs loss scaling: it casts the model's real fp32 gradients to fp16 at several
loss scales and counts how many underflow to zero or overflow to inf.

On a CPU without native bf16 (probed at run time: :func:`dl2llm.hardware.native_bf16`)
bf16 is emulated and slow: read such step times as a lesson in numerics and memory.
"""

from __future__ import annotations

import copy
import time

import torch

from dl2llm.data import lm_splits
from dl2llm.efficiency import fp16_underflow, loss_agreement, train_with_precision
from dl2llm.efficiency.precision import byte_batches, byte_gpt2, model_gradients
from dl2llm.finetune import count_parameters
from dl2llm.hardware import native_bf16
from dl2llm.results import save_results
from dl2llm.runtime import (
    UsageError,
    check_positive,
    deliverable_parser,
    resolve_device,
    run_main,
    set_seed,
)

NAME = "mixed_precision_training"
LOSS_SCALES = [1.0, 2.0**8, 2.0**16, 2.0**24, 2.0**32]
QUICK = {"n_layer": 2, "n_embd": 64, "n_head": 2, "block_size": 64, "batch_size": 4, "steps": 4}
FULL = {"n_layer": 4, "n_embd": 128, "n_head": 4, "block_size": 256, "batch_size": 8, "steps": 60}


def run_key(precision: str, checkpointing: bool) -> str:
    return f"{precision}_ckpt" if checkpointing else precision


def plot(runs: dict, underflow: list[dict], path) -> None:
    from dl2llm.plots import plt, save_figure

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
    save_figure(fig, path, dpi=110, bbox_inches=None)


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument("--steps", type=check_positive, help="training steps per run")
    parser.add_argument("--batch-size", type=check_positive, help="sequences per batch")
    parser.add_argument("--block-size", type=check_positive, help="bytes per sequence")
    parser.add_argument("--n-layer", type=check_positive, help="Transformer blocks")
    parser.add_argument("--n-embd", type=check_positive, help="model width")
    parser.add_argument("--n-head", type=check_positive, help="attention heads")
    parser.add_argument(
        "--precisions",
        default="fp32,bf16,fp16",
        help="comma-separated: fp32, bf16, fp16 (fp16 runs only on CUDA; default: all)",
    )
    parser.add_argument(
        "--threads",
        type=check_positive,
        default=1,
        help="CPU threads for torch (default 1: fastest for small models on a shared CPU)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    set_seed(args.seed)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    settings = dict(QUICK if args.quick else FULL)
    for name in ("steps", "batch_size", "block_size", "n_layer", "n_embd", "n_head"):
        settings[name] = getattr(args, name) or settings[name]
    if settings["n_embd"] % settings["n_head"]:
        raise UsageError(f"--n-embd {settings['n_embd']} must be divisible by --n-head")
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if "fp32" not in precisions:
        raise UsageError("--precisions must include fp32 (the reference curve)")
    unknown = sorted(set(precisions) - {"fp32", "bf16", "fp16"})
    if unknown:
        raise UsageError(f"--precisions: unknown {unknown} (use fp32, bf16, fp16)")
    if device.type != "cuda" and "fp16" in precisions:
        print("note: fp16 + GradScaler training needs CUDA; skipped on this device")
        precisions.remove("fp16")
    if device.type == "cpu" and not native_bf16():
        print("note: this CPU has no native bf16: bf16 runs are emulated (slow)")

    batches = byte_batches(
        lm_splits()["train"],
        settings["batch_size"],
        settings["block_size"],
        settings["steps"],
        args.seed,
    )
    initial = byte_gpt2(
        settings["n_layer"],
        settings["n_embd"],
        settings["n_head"],
        settings["block_size"],
        args.seed,
    )
    runs = {}
    for precision in precisions:
        for checkpointing in (False, True):
            model = copy.deepcopy(initial)
            runs[run_key(precision, checkpointing)] = train_with_precision(
                model, batches, precision, device, checkpointing
            )
            if precision == "fp32" and not checkpointing:
                trained = model
    reference = runs["fp32"].losses
    grads = model_gradients(trained.to(device).float(), batches[-1].to(device)).cpu()
    underflow = fp16_underflow(grads, LOSS_SCALES)

    metrics: dict[str, object] = {
        "device": str(device),
        "parameters": count_parameters(initial).total,
    }
    print(f"\n{'run':<10} {'step ms':>9} {'peak MiB':>9} {'final loss':>10} {'max |dloss|':>11}")
    for key, run in runs.items():
        agreement = loss_agreement(reference, run.losses)
        metrics[f"{key}_step_ms"] = round(1000 * run.median_step_s, 2)
        metrics[f"{key}_peak_mib"] = round(run.peak_memory_mib, 1)
        metrics[f"{key}_final_loss"] = round(run.losses[-1], 4)
        metrics[f"{key}_max_abs_loss_diff"] = agreement["max_abs_diff"]
        if run.final_loss_scale is not None:
            metrics[f"{key}_skipped_steps"] = run.skipped_steps
            metrics[f"{key}_final_loss_scale"] = run.final_loss_scale
        print(
            f"{key:<10} {1000 * run.median_step_s:>9.1f} {run.peak_memory_mib:>9.1f} "
            f"{run.losses[-1]:>10.4f} {agreement['max_abs_diff']:>11.2e}"
        )
    metrics["checkpointing_memory_ratio"] = round(
        runs["fp32_ckpt"].peak_memory_mib / max(runs["fp32"].peak_memory_mib, 1e-9), 3
    )
    print(f"\nfp16 casts of {grads.numel():,} real fp32 gradients (after training):")
    print(
        f"{'scale S':>10} {'underflow %':>12} {'subnormal %':>12} {'overflow %':>11} "
        f"{'rel. error':>11}"
    )
    for row in underflow:
        error = "-" if row["relative_error"] is None else f"{row['relative_error']:.2e}"
        print(
            f"{row['scale']:>10.0f} {100 * row['underflow_share']:>12.3f} "
            f"{100 * row['subnormal_share']:>12.3f} {100 * row['overflow_share']:>11.3f} "
            f"{error:>11}"
        )
    by_scale = {row["scale"]: row for row in underflow}
    metrics["fp16_underflow_share_unscaled"] = by_scale[1.0]["underflow_share"]
    metrics["fp16_underflow_share_scale_2e16"] = by_scale[2.0**16]["underflow_share"]
    metrics["fp16_overflow_share_scale_2e32"] = by_scale[2.0**32]["overflow_share"]
    metrics["fp16_underflow"] = underflow
    metrics["loss_curves"] = {key: run.losses for key, run in runs.items()}

    args.out.mkdir(parents=True, exist_ok=True)
    plot_name = f"{NAME}_curves.png"
    plot(runs, underflow, args.out / plot_name)
    save_results(
        NAME,
        metrics,
        out_dir=args.out,
        config={**settings, "precisions": precisions, "device": str(device)},
        seed=args.seed,
        quick=args.quick,
        started=started,
        artifacts=[plot_name],
    )
    print(f"\nresults: {args.out / (NAME + '.json')}")
    return 0


if __name__ == "__main__":
    run_main(main)
