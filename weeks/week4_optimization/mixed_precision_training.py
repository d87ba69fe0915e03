"""Mixed precision and gradient checkpointing: what they save, and what they cost in accuracy.

Trains the same GPT-2-architecture byte-level language model (same initial
weights, same batches of *Botchan*) in fp32, in bf16 autocast and in fp16
autocast with a dynamic ``GradScaler`` (on the CPU too) -- each with and without
gradient checkpointing. For every run it reports the median step time, the
measured peak memory (process RSS growth on CPU, ``max_memory_allocated`` on
CUDA) and how far the loss curve strays from fp32's, next to the noise floor:
how far an fp32 run from another seed's initial weights strays. The fp16 runs
let the scale grow every few steps, so the scaler's skipped steps and halvings show.
Then it casts the model's real fp32 gradients to fp16 at several loss scales and
counts how many underflow to zero or overflow to inf.

It first probes and prints the hardware (:func:`dl2llm.hardware.probe`: CPU flags,
oneDNN bf16/fp16 kernels, measured matmul GFLOP/s, CUDA); a 16-bit format that the
CPU only emulates runs a few steps instead of all.

Outputs: results/mixed_precision_training.json, mixed_precision_training_curves.png.
The lesson's code: src/dl2llm/efficiency/precision_lesson.py.
"""

from __future__ import annotations

from dl2llm.efficiency.precision_lesson import (
    NAME,
    PrecisionConfig,
    choose_precisions,
    run_lesson,
)
from dl2llm.hardware import probe
from dl2llm.runtime import check_positive, deliverable_parser, resolve_device, run_main, start_run

SIZES = ("steps", "batch_size", "block_size", "n_layer", "n_embd", "n_head")


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__, threads=1)
    parser.add_argument("--steps", type=check_positive, help="training steps per run")
    parser.add_argument("--batch-size", type=check_positive, help="sequences per batch")
    parser.add_argument("--block-size", type=check_positive, help="bytes per sequence")
    parser.add_argument("--n-layer", type=check_positive, help="Transformer blocks")
    parser.add_argument("--n-embd", type=check_positive, help="model width")
    parser.add_argument("--n-head", type=check_positive, help="attention heads")
    parser.add_argument(
        "--precisions",
        default="fp32,bf16,fp16",
        help="comma-separated: fp32, bf16, fp16 (default: all; fp32 is required)",
    )
    run = start_run(NAME, parser, argv)
    args = run.args
    device = resolve_device(args.device)
    config = PrecisionConfig.quick() if args.quick else PrecisionConfig()
    config = config.override(**{name: getattr(args, name) for name in SIZES})
    precisions = choose_precisions(args.precisions)
    hardware = probe(config.probe_matmul_size)
    print(hardware.report())
    lesson = run_lesson(config, precisions, device, args.seed, args.out, hardware)
    print(lesson.report())
    run.save(lesson.metrics, config=lesson.config, artifacts=lesson.artifacts)
    return 0


if __name__ == "__main__":
    run_main(main)
