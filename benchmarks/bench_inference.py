"""Benchmark: ONNX Runtime int8 MiniLM against PyTorch fp32 MiniLM, one sentence at a time.

The int8 model keeps its feed-forward products in fp32 (``feed_forward_matmuls``): with
every weight in int8 a few embeddings fall to a cosine of about 0.98. That variant is timed
too, for comparison. All run on one thread at batch 1 (a service embedding one query),
interleaved call by call so that a busy machine slows every side alike; the ratio of medians
is the speed-up. CPU time (``time.process_time``) is reported beside wall time: on a shared
machine it is the steadier of the two. Agreement: cosine between the int8 and fp32
embeddings of 200 movie review snippets, each embedded alone (batch 1, as timed) and all
together in one padded batch (where int8 shares one activation scale per tensor across the
batch); mean and minimum of each.

Target: ORT int8 >= 2x PyTorch fp32 at batch 1, with embedding cosine >= 0.99 (every one of
the 200 embeddings, in both settings).
Quick mode exports a 1-layer slice of MiniLM (seconds, for CI); its numbers are not the target's.
"""

import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from dl2llm.data import sentiment_records
from dl2llm.efficiency.latency import torch_threads
from dl2llm.efficiency.onnx_export import (
    SentenceEncoder,
    cosine_agreement,
    export_onnx,
    feed_forward_matmuls,
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


def agreement(runs: dict, alone: list, batch: dict) -> dict[str, dict[str, np.ndarray]]:
    """Cosine of each run's embeddings to the first run's: texts alone and in one padded batch."""
    reference, *others = runs

    def embed_alone(run) -> np.ndarray:
        return np.concatenate([run(example) for example in alone])  # (N, C)

    expected = {"batch1": embed_alone(runs[reference]), "padded": runs[reference](batch)}
    return {
        name: {
            "batch1": cosine_agreement(embed_alone(runs[name]), expected["batch1"]),
            "padded": cosine_agreement(runs[name](batch), expected["padded"]),
        }
        for name in others
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
    alone = [
        {
            name: value[i : i + 1, : int(batch["attention_mask"][i].sum())]
            for name, value in batch.items()
        }
        for i in range(len(texts))
    ]  # each text unpadded, batch 1
    singles = alone[:20]  # the timed ones

    with tempfile.TemporaryDirectory() as folder:
        example = {name: value[:2] for name, value in batch.items()}
        fp32 = export_onnx(encoder, example, Path(folder) / "minilm.onnx", "sentence_embedding")
        keep = feed_forward_matmuls(fp32, bert.config.intermediate_size)
        down = feed_forward_matmuls(fp32, bert.config.intermediate_size, outputs_only=True)
        sessions = {
            "ort_int8": ort_session(quantize_int8(fp32, Path(folder) / "int8.onnx", keep), 1),
            "ort_int8_down": ort_session(quantize_int8(fp32, Path(folder) / "down.onnx", down), 1),
            "ort_int8_all": ort_session(quantize_int8(fp32, Path(folder) / "all.onnx"), 1),
        }

    def run_torch(inputs):
        with torch.inference_mode():
            return encoder(**inputs).numpy()

    runs = {"pytorch_fp32": run_torch}
    runs.update({name: partial(run_session, session) for name, session in sessions.items()})
    with torch_threads(1):
        cosines = agreement(runs, alone, batch)
        seconds = interleaved(runs, singles, rounds)
    speedups = {
        name: {
            clock: seconds["pytorch_fp32"][f"{clock}_s"] / seconds[name][f"{clock}_s"]
            for clock in ("wall", "cpu")
        }
        for name in sessions
    }
    speedup = speedups["ort_int8"]["wall"]
    worst = min(float(c.min()) for c in cosines["ort_int8"].values())
    speed_ok = speedup >= SPEED_TARGET
    cosine_ok = worst >= COSINE_TARGET
    print(f"MiniLM, {layers} layer(s), batch 1, 1 thread, {len(singles)} sentences x {rounds};")
    print(f"ort_int8 keeps {len(keep)} feed-forward MatMuls in fp32, ort_int8_down the "
          f"{len(down)} output ones, ort_int8_all none")  # fmt: skip
    for name, timing in seconds.items():
        wall_ms, cpu_ms = timing["wall_s"] * 1000, timing["cpu_s"] * 1000
        ratio = speedups.get(name, {"wall": 1.0, "cpu": 1.0})
        print(f"  {name:<14} wall {wall_ms:8.2f} ms ({ratio['wall']:.2f}x)   "
              f"cpu {cpu_ms:8.2f} ms ({ratio['cpu']:.2f}x)")  # fmt: skip
        for setting, values in cosines.get(name, {}).items():
            print(
                f"    cosine to fp32, {setting:<7} mean {values.mean():.4f}  min {values.min():.4f}"
            )
    verdict = "met" if speed_ok else "MISSED"
    print(f"ort_int8 speed-up: {speedup:.2f}x wall, {speedups['ort_int8']['cpu']:.2f}x CPU time "
          f"(target >= {SPEED_TARGET}x): {verdict}")  # fmt: skip
    verdict = "met" if cosine_ok else "MISSED"
    print(f"ort_int8 lowest cosine over {len(texts)} texts: {worst:.4f} "
          f"(target >= {COSINE_TARGET}): {verdict}")  # fmt: skip
    metrics = {
        "int8_speedup_b1": round(speedup, 2),
        "int8_speedup_b1_cpu_time": round(speedups["ort_int8"]["cpu"], 2),
        "pytorch_fp32_b1_ms": round(seconds["pytorch_fp32"]["wall_s"] * 1000, 3),
        "ort_int8_b1_ms": round(seconds["ort_int8"]["wall_s"] * 1000, 3),
        "int8_mean_cosine": round(float(cosines["ort_int8"]["batch1"].mean()), 5),
        "int8_min_cosine": round(float(cosines["ort_int8"]["batch1"].min()), 5),
        "int8_padded_mean_cosine": round(float(cosines["ort_int8"]["padded"].mean()), 5),
        "int8_padded_min_cosine": round(float(cosines["ort_int8"]["padded"].min()), 5),
        "int8_fp32_matmuls": len(keep),
        "down_fp32_int8_speedup_b1": round(speedups["ort_int8_down"]["wall"], 2),
        "down_fp32_int8_min_cosine": round(float(cosines["ort_int8_down"]["batch1"].min()), 5),
        "down_fp32_int8_padded_min_cosine": round(
            float(cosines["ort_int8_down"]["padded"].min()), 5
        ),
        "all_int8_speedup_b1": round(speedups["ort_int8_all"]["wall"], 2),
        "all_int8_min_cosine": round(float(cosines["ort_int8_all"]["batch1"].min()), 5),
        "all_int8_padded_min_cosine": round(float(cosines["ort_int8_all"]["padded"].min()), 5),
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
