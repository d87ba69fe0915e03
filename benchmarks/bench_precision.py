"""Is 16-bit training faster and smaller here? fp32 vs bf16 vs fp16 + GradScaler, same run.

Trains the same byte-level GPT-2 (6 layers, 384 wide, 256 tokens, batch 32; ``--quick``: a
tiny one) for the same steps in fp32, bf16 and fp16, plus fp32 from another seed as the noise
floor, and reports, against fp32 measured in the same run:

- ``bf16_speedup`` / ``fp16_speedup``: fp32's median step time over the precision's;
- ``bf16_memory_ratio`` / ``fp16_memory_ratio``: peak memory over fp32's;
- ``*_loss_diff_to_seed_noise``: the median loss gap to fp32 over the other-seed fp32 gap.

Where 16-bit is fast depends on the hardware (a GPU's tensor cores; on a CPU, AVX-512 BF16
or AMX, else emulation), so the probe (:func:`dl2llm.hardware.probe`) is printed and saved
with the numbers. ``--device cuda`` (or ``auto``) times a GPU. The measuring code:
src/dl2llm/efficiency/precision_bench.py.
"""

from dataclasses import replace

from dl2llm import paths
from dl2llm.efficiency.precision_bench import (
    PrecisionBenchConfig,
    compare_precisions,
    repository_text,
)
from dl2llm.hardware import probe
from dl2llm.results import print_metrics
from dl2llm.runtime import check_positive, deliverable_parser, resolve_device, run_main, start_run


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument("--steps", type=check_positive, help="training steps (default: by mode)")
    parser.add_argument("--n-embd", type=check_positive, help="model width (default: by mode)")
    parser.add_argument("--batch-size", type=check_positive, help="windows per step")
    run = start_run("bench_precision", parser, argv)
    device = resolve_device(run.args.device)
    hardware = probe()
    print(hardware.report())
    config = PrecisionBenchConfig.quick() if run.args.quick else PrecisionBenchConfig()
    overrides = {"steps": run.args.steps, "n_embd": run.args.n_embd,
                 "batch_size": run.args.batch_size}  # fmt: skip
    config = replace(config, **{k: v for k, v in overrides.items() if v})
    text = repository_text(paths.REPO_ROOT)
    metrics, _ = compare_precisions(config, text, device, run.args.seed)
    print_metrics(metrics)
    run_config = {**config.to_dict(), "device": str(device), "hardware": hardware.as_dict()}
    run.save(metrics, config=run_config)
    return 0


if __name__ == "__main__":
    run_main(main)
