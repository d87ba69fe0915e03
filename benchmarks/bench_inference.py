"""Benchmark: ONNX Runtime int8 MiniLM against PyTorch fp32 MiniLM, one sentence at a time.

Both run on one thread at batch 1 (a service embedding one query), interleaved call by call
so that a busy machine slows both sides alike; the ratio of medians is the speed-up. CPU
time (``time.process_time``) is reported beside wall time: on a shared machine it is the
steadier of the two. Agreement: cosine between the int8 and fp32 embeddings of 200 movie
review snippets, mean (the target) and minimum (reported).

Target: ORT int8 >= 2x PyTorch fp32 at batch 1, with mean embedding cosine >= 0.99.
Quick mode exports a 1-layer slice of MiniLM (seconds, for CI); its numbers are not the target's.
"""

import statistics
import tempfile
import time
from pathlib import Path

import torch

from dl2llm.data import sentiment_records
from dl2llm.efficiency.latency import torch_threads
from dl2llm.efficiency.onnx_export import (
    SentenceEncoder,
    cosine_agreement,
    export_onnx,
    first_layers,
    ort_session,
    quantize_int8,
    run_session,
)
from dl2llm.models import load_encoder
from dl2llm.results import save_results
from dl2llm.runtime import check_positive, deliverable_parser, run_main, set_seed

NAME = "bench_inference"
SPEED_TARGET, COSINE_TARGET = 2.0, 0.99
AGREEMENT_TEXTS = 200


def interleaved(runs: dict, inputs: list, rounds: int) -> dict[str, dict[str, float]]:
    """Median wall and CPU seconds per call of each run, alternating runs call by call."""
    wall = {name: [] for name in runs}
    cpu = {name: [] for name in runs}
    for _ in range(rounds):
        for example in inputs:
            for name, run in runs.items():
                wall_start, cpu_start = time.perf_counter(), time.process_time()
                run(example)
                wall[name].append(time.perf_counter() - wall_start)
                cpu[name].append(time.process_time() - cpu_start)
    return {
        name: {"wall_s": statistics.median(wall[name]), "cpu_s": statistics.median(cpu[name])}
        for name in runs
    }


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument("--rounds", type=check_positive, help="passes over the timed sentences")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    set_seed(args.seed)
    rounds = args.rounds or (2 if args.quick else 5)
    bert, tokenizer = load_encoder()
    layers = 1 if args.quick else bert.config.num_hidden_layers
    encoder = SentenceEncoder(first_layers(bert, layers)).eval()
    texts = [text for text, _ in sentiment_records()[:AGREEMENT_TEXTS]]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    batch = {name: batch[name] for name in ("input_ids", "attention_mask")}
    singles = [
        {
            name: value[i : i + 1, : int(batch["attention_mask"][i].sum())]
            for name, value in batch.items()
        }
        for i in range(20)
    ]

    with tempfile.TemporaryDirectory() as folder:
        example = {name: value[:2] for name, value in batch.items()}
        fp32 = export_onnx(encoder, example, Path(folder) / "minilm.onnx", "sentence_embedding")
        int8_session = ort_session(quantize_int8(fp32, Path(folder) / "minilm_int8.onnx"), 1)

    def run_torch(inputs):
        with torch.inference_mode():
            return encoder(**inputs).numpy()

    with torch_threads(1):
        cosines = cosine_agreement(run_session(int8_session, batch), run_torch(batch))
        seconds = interleaved(
            {"pytorch_fp32": run_torch, "ort_int8": lambda x: run_session(int8_session, x)},
            singles,
            rounds,
        )
    speedup = seconds["pytorch_fp32"]["wall_s"] / seconds["ort_int8"]["wall_s"]
    speedup_cpu = seconds["pytorch_fp32"]["cpu_s"] / seconds["ort_int8"]["cpu_s"]
    speed_ok = speedup >= SPEED_TARGET
    cosine_ok = float(cosines.mean()) >= COSINE_TARGET
    print(f"MiniLM, {layers} layer(s), batch 1, 1 thread, {len(singles)} sentences x {rounds}")
    for name, timing in seconds.items():
        wall_ms, cpu_ms = timing["wall_s"] * 1000, timing["cpu_s"] * 1000
        print(f"  {name:<14} wall {wall_ms:8.2f} ms   cpu {cpu_ms:8.2f} ms")
    verdict = "met" if speed_ok else "MISSED"
    print(f"speed-up: {speedup:.2f}x wall, {speedup_cpu:.2f}x CPU time "
          f"(target >= {SPEED_TARGET}x): {verdict}")  # fmt: skip
    verdict = "met" if cosine_ok else "MISSED"
    print(f"cosine int8 vs fp32 over {len(texts)} texts: mean {cosines.mean():.4f}, "
          f"min {cosines.min():.4f} (target mean >= {COSINE_TARGET}): {verdict}")  # fmt: skip
    metrics = {
        "int8_speedup_b1": round(speedup, 2),
        "int8_speedup_b1_cpu_time": round(speedup_cpu, 2),
        "pytorch_fp32_b1_ms": round(seconds["pytorch_fp32"]["wall_s"] * 1000, 3),
        "ort_int8_b1_ms": round(seconds["ort_int8"]["wall_s"] * 1000, 3),
        "int8_mean_cosine": round(float(cosines.mean()), 5),
        "int8_min_cosine": round(float(cosines.min()), 5),
        "layers": layers,
        "speed_target_met": speed_ok,
        "cosine_target_met": cosine_ok,
    }
    save_results(
        NAME,
        metrics,
        out_dir=args.out,
        config={"rounds": rounds, "sentences_timed": len(singles), "texts": len(texts)},
        seed=args.seed,
        quick=args.quick,
        started=started,
    )
    return 0


if __name__ == "__main__":
    run_main(main)
