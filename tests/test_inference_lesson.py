"""inference_optimization's lesson module: settings, headline numbers, table and plot."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dl2llm.efficiency.inference_lesson import (
    InferenceConfig,
    headline,
    latency_table,
    plot_latency,
)
from dl2llm.efficiency.latency import Latency, VariantReport


def report(model: str, variant: str, threads: int, p50_small: float, p50_large: float):
    return VariantReport(
        model, variant, threads, Latency(p50_small, 2 * p50_small, 1),
        Latency(p50_large, 2 * p50_large, 32), 32 / p50_large, "items/s", 10.0, 0.99,
        "mean_cosine", None if variant.startswith("generate") else 1e-6,
    )  # fmt: skip


REPORTS = [
    report("minilm", "pytorch fp32", 1, 4.0, 40.0),
    report("minilm", "onnxruntime fp32", 1, 3.0, 30.0),
    report("minilm", "onnxruntime int8", 1, 2.0, 20.0),
    report("gpt", "onnxruntime fp32", 1, 1.0, 5.0),
    report("gpt", "onnxruntime int8", 1, 1.0, 5.0),
    report("gpt", "generate, KV cache", 1, 10.0, 100.0),
    report("gpt", "generate, no cache", 1, 30.0, 400.0),
]


def test_repeats_default_by_mode_and_a_fifth_at_the_large_batch():
    quick = InferenceConfig.quick()
    assert quick.timed_calls == (10, 2) and quick.onnx_dir.name == "quick"
    full = InferenceConfig()
    assert full.timed_calls == (50, 10) and full.onnx_dir.name == "full"
    assert full.new_tokens == 128 and full.encoder_layers is None and not full.tiny_gpt
    assert replace(quick, repeats=25, new_tokens=8).to_dict() == {
        "repeats": [25, 5],
        "new_tokens": 8,
        "onnx_dir": str(quick.onnx_dir),
    }


def test_headline_speedups_compare_single_thread_p50():
    numbers = headline(REPORTS)
    assert numbers["minilm_int8_speedup_b1"] == 2.0
    assert numbers["kv_cache_speedup_b1"] == 3.0
    assert numbers["kv_cache_speedup_b32"] == 4.0
    assert numbers["minilm_int8_mean_cosine"] == pytest.approx(0.99)


def test_table_has_one_row_per_variant_and_the_plot_is_written(tmp_path):
    lines = latency_table(REPORTS).split("\n")
    assert len(lines) == 2 + len(REPORTS) + 2  # header, rule, rows, note, blank line
    assert lines[2].startswith("minilm pytorch fp32 1t")
    assert lines[-3].rstrip().endswith("-")  # no max|diff| for generation
    path = plot_latency(REPORTS, tmp_path / "latency.png")
    assert path.stat().st_size > 1000
