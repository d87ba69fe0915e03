"""Inference optimization: ONNX export, ONNX Runtime fp32/int8, KV cache, 1 vs 2 threads.

Two models are exported with ``torch.onnx.export(dynamo=True)`` and dynamic batch/sequence
axes: the all-MiniLM-L6-v2 sentence encoder (BERT + mean pooling + normalisation) and the
project's GPT-2 (our ``dl2llm.gpt.GPT`` module loaded from the HF-format folder that
``pretrain_gpt`` writes, exported as "ids -> next-token logits"). Each is run as PyTorch
fp32, ONNX Runtime fp32 and ONNX Runtime int8 (dynamic quantization; MiniLM keeps its
feed-forward products in fp32, which lifts its worst embedding cosine from about 0.98 to
above 0.99) on 1 and 2 threads, at batch 1 and batch 32; generation is timed with and
without the KV cache. One table and
one plot report p50/p95 latency, throughput, size and agreement with PyTorch fp32
(embedding cosine for MiniLM, next-token agreement for GPT).

The int8 speed-up depends on the CPU's int8 dot-product instructions (VNNI, AMX), so the
hardware is probed first (:func:`dl2llm.hardware.probe`) and printed and recorded with the
numbers.

Quick mode exports a 1-layer slice of MiniLM (the real first layer; exporting all six takes
longer than a CI run should) and the tiny quick GPT; full mode exports the real models.

Outputs: results/inference_optimization.json, inference_optimization_latency.png. The
lesson's code: src/dl2llm/efficiency/inference_lesson.py.
"""

from dataclasses import replace

from dl2llm.efficiency.inference_lesson import NAME, InferenceConfig, latency_table, run_lesson
from dl2llm.hardware import probe
from dl2llm.results import print_metrics
from dl2llm.runtime import check_positive, deliverable_parser, run_main, start_run


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument(
        "--repeats", type=check_positive, help="timed calls at batch 1 (default: by mode)"
    )
    parser.add_argument(
        "--new-tokens", type=check_positive, default=128, help="tokens generated per prompt"
    )
    run = start_run(NAME, parser, argv)
    args = run.args
    config = InferenceConfig.quick() if args.quick else InferenceConfig()
    config = replace(config, repeats=args.repeats or config.repeats, new_tokens=args.new_tokens)
    hardware = probe()
    print(hardware.report())
    if args.quick:
        print("quick mode: MiniLM is exported as a 1-layer slice and GPT is the tiny quick model")
    metrics, reports, artifacts = run_lesson(config, args.out)
    metrics["cpu_int8_dot_product"] = hardware.int8_dot_product
    print(latency_table(reports))
    print_metrics(metrics)  # the per-variant rows (a list) are left to the JSON
    run.save(
        metrics, config={**config.to_dict(), "hardware": hardware.as_dict()}, artifacts=artifacts
    )
    return 0


if __name__ == "__main__":
    run_main(main)
