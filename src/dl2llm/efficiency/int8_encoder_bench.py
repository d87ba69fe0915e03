"""ONNX Runtime int8 MiniLM against PyTorch fp32 MiniLM, one sentence at a time.

Three int8 exports of the all-MiniLM-L6-v2 sentence encoder (:mod:`dl2llm.efficiency.onnx_export`)
are timed against the PyTorch fp32 encoder, the baseline:

- ``ort_int8`` keeps its feed-forward products in fp32 (:func:`feed_forward_matmuls`): with
  every weight in int8 a few embeddings fall to a cosine of about 0.98;
- ``ort_int8_down`` keeps only the feed-forward output products in fp32;
- ``ort_int8_all`` quantizes every weight.

All run on one thread at batch 1 (a service embedding one query), interleaved call by call so
that a busy machine slows every side alike; the ratio of medians is the speed-up. CPU time
(``time.process_time``) is reported beside wall time: on a shared machine it is the steadier
of the two. Agreement: cosine between the int8 and fp32 embeddings of 200 movie review
snippets, each embedded alone (batch 1, as timed) and all together in one padded batch (where
int8 shares one activation scale per tensor across the batch).

Targets: ``ort_int8`` >= :data:`SPEED_TARGET` x PyTorch fp32 at batch 1, with every embedding's
cosine >= :data:`COSINE_TARGET` in both settings. ``benchmarks/bench_inference.py`` runs it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

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

SPEED_TARGET, COSINE_TARGET = 2.0, 0.99
AGREEMENT_TEXTS, TIMED_TEXTS = 200, 20
BASELINE = "pytorch_fp32"

Inputs = dict[str, torch.Tensor]
Embed = Callable[[Inputs], np.ndarray]


@dataclass
class Int8BenchConfig:
    """How much of MiniLM to export and how long to time it (``quick()`` for CI)."""

    layers: int | None = None  # the first ``layers`` of MiniLM; None: all of them
    rounds: int = 5  # passes over the timed sentences

    @classmethod
    def quick(cls) -> Int8BenchConfig:
        return cls(layers=1, rounds=2)


def interleaved(runs: dict[str, Embed], inputs: list[Inputs], rounds: int) -> dict:
    """Median wall and CPU seconds per call of each run, alternating runs call by call."""
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
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


def agreement(runs: dict[str, Embed], alone: list[Inputs], batch: Inputs) -> dict:
    """Cosine of each run's embeddings to the first run's: texts alone and in one padded batch."""
    reference, *others = runs

    def embed_alone(run: Embed) -> np.ndarray:
        return np.concatenate([run(example) for example in alone])  # (N, C)

    expected = {"batch1": embed_alone(runs[reference]), "padded": runs[reference](batch)}
    return {
        name: {
            "batch1": cosine_agreement(embed_alone(runs[name]), expected["batch1"]),
            "padded": cosine_agreement(runs[name](batch), expected["padded"]),
        }
        for name in others
    }


def unpadded(batch: Inputs) -> list[Inputs]:
    """Each row of a padded batch alone (batch 1), cut to its own length."""
    return [
        {
            name: value[i : i + 1, : int(batch["attention_mask"][i].sum())]
            for name, value in batch.items()
        }
        for i in range(len(batch["input_ids"]))
    ]


@dataclass(frozen=True)
class Int8Bench:
    """What :func:`compare_int8_encoders` measured (seconds and cosines keyed by run name)."""

    layers: int
    rounds: int
    texts: int
    sentences_timed: int
    fp32_matmuls: int  # feed-forward MatMuls ort_int8 keeps in fp32
    down_matmuls: int  # those ort_int8_down keeps
    seconds: dict[str, dict[str, float]]  # run -> {"wall_s", "cpu_s"}
    cosines: dict[str, dict[str, np.ndarray]]  # int8 run -> {"batch1", "padded"}

    def speedup(self, name: str, clock: str = "wall") -> float:
        """The baseline's median seconds over ``name``'s, by ``wall`` or ``cpu`` clock."""
        return self.seconds[BASELINE][f"{clock}_s"] / self.seconds[name][f"{clock}_s"]

    def min_cosine(self, name: str, setting: str = "batch1") -> float:
        """``name``'s lowest cosine to fp32 in one setting, to 5 decimals."""
        return round(float(self.cosines[name][setting].min()), 5)

    @property
    def worst_cosine(self) -> float:
        """``ort_int8``'s lowest cosine in either setting."""
        return min(float(c.min()) for c in self.cosines["ort_int8"].values())

    def metrics(self) -> dict[str, Any]:
        """The results file's metrics."""
        return {
            "int8_speedup_b1": round(self.speedup("ort_int8"), 2),
            "int8_speedup_b1_cpu_time": round(self.speedup("ort_int8", "cpu"), 2),
            "pytorch_fp32_b1_ms": round(self.seconds[BASELINE]["wall_s"] * 1000, 3),
            "ort_int8_b1_ms": round(self.seconds["ort_int8"]["wall_s"] * 1000, 3),
            "int8_mean_cosine": round(float(self.cosines["ort_int8"]["batch1"].mean()), 5),
            "int8_min_cosine": self.min_cosine("ort_int8"),
            "int8_padded_mean_cosine": round(float(self.cosines["ort_int8"]["padded"].mean()), 5),
            "int8_padded_min_cosine": self.min_cosine("ort_int8", "padded"),
            "int8_fp32_matmuls": self.fp32_matmuls,
            "down_fp32_int8_speedup_b1": round(self.speedup("ort_int8_down"), 2),
            "down_fp32_int8_min_cosine": self.min_cosine("ort_int8_down"),
            "down_fp32_int8_padded_min_cosine": self.min_cosine("ort_int8_down", "padded"),
            "all_int8_speedup_b1": round(self.speedup("ort_int8_all"), 2),
            "all_int8_min_cosine": self.min_cosine("ort_int8_all"),
            "all_int8_padded_min_cosine": self.min_cosine("ort_int8_all", "padded"),
            "layers": self.layers,
            "speed_target_met": self.speedup("ort_int8") >= SPEED_TARGET,
            "cosine_target_met": self.worst_cosine >= COSINE_TARGET,
        }

    def report(self) -> str:
        """The timings and cosines of every run, then the verdicts, as text."""
        lines = [
            f"MiniLM, {self.layers} layer(s), batch 1, 1 thread, "
            f"{self.sentences_timed} sentences x {self.rounds};",
            f"ort_int8 keeps {self.fp32_matmuls} feed-forward MatMuls in fp32, ort_int8_down "
            f"the {self.down_matmuls} output ones, ort_int8_all none",
        ]
        for name, timing in self.seconds.items():
            wall_ms, cpu_ms = timing["wall_s"] * 1000, timing["cpu_s"] * 1000
            wall_x, cpu_x = self.speedup(name), self.speedup(name, "cpu")
            lines.append(f"  {name:<14} wall {wall_ms:8.2f} ms ({wall_x:.2f}x)   "
                         f"cpu {cpu_ms:8.2f} ms ({cpu_x:.2f}x)")  # fmt: skip
            for setting, values in self.cosines.get(name, {}).items():
                lines.append(f"    cosine to fp32, {setting:<7} mean {values.mean():.4f}  "
                             f"min {values.min():.4f}")  # fmt: skip
        speedup, worst = self.speedup("ort_int8"), self.worst_cosine
        verdict = "met" if speedup >= SPEED_TARGET else "MISSED"
        lines.append(f"ort_int8 speed-up: {speedup:.2f}x wall, "
                     f"{self.speedup('ort_int8', 'cpu'):.2f}x CPU time "
                     f"(target >= {SPEED_TARGET}x): {verdict}")  # fmt: skip
        verdict = "met" if worst >= COSINE_TARGET else "MISSED"
        lines.append(f"ort_int8 lowest cosine over {self.texts} texts: {worst:.4f} "
                     f"(target >= {COSINE_TARGET}): {verdict}")  # fmt: skip
        return "\n".join(lines)


def compare_int8_encoders(config: Int8BenchConfig) -> Int8Bench:
    """Export, quantize and time ``config.layers`` of MiniLM, ``config.rounds`` passes."""
    bert, tokenizer = load_encoder()
    layers = bert.config.num_hidden_layers if config.layers is None else config.layers
    rounds = config.rounds
    encoder = SentenceEncoder(first_layers(bert, layers)).eval()
    texts = [text for text, _ in sentiment_records()[:AGREEMENT_TEXTS]]
    padded = tokenizer(texts, padding=True, return_tensors="pt")
    batch = {name: padded[name] for name in ("input_ids", "attention_mask")}
    alone = unpadded(batch)
    ffn_width = bert.config.intermediate_size

    with tempfile.TemporaryDirectory() as folder:
        example = {name: value[:2] for name, value in batch.items()}
        fp32 = export_onnx(encoder, example, Path(folder) / "minilm.onnx", "sentence_embedding")
        keep = feed_forward_matmuls(fp32, ffn_width)
        down = feed_forward_matmuls(fp32, ffn_width, outputs_only=True)
        sessions = {
            "ort_int8": ort_session(quantize_int8(fp32, Path(folder) / "int8.onnx", keep), 1),
            "ort_int8_down": ort_session(quantize_int8(fp32, Path(folder) / "down.onnx", down), 1),
            "ort_int8_all": ort_session(quantize_int8(fp32, Path(folder) / "all.onnx"), 1),
        }

    def run_torch(inputs: Inputs) -> np.ndarray:
        with torch.inference_mode():
            return encoder(**inputs).numpy()

    runs: dict[str, Embed] = {BASELINE: run_torch}
    runs.update({name: partial(run_session, session) for name, session in sessions.items()})
    with torch_threads(1):
        cosines = agreement(runs, alone, batch)
        seconds = interleaved(runs, alone[:TIMED_TEXTS], rounds)
    return Int8Bench(
        layers, rounds, len(texts), TIMED_TEXTS, len(keep), len(down), seconds, cosines
    )
