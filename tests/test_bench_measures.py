"""The measuring code of the benchmarks (``benchmarks/bench_*.py``), on tiny inputs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from dl2llm.efficiency.generation_bench import (
    Answer,
    GenerationBench,
    add_ratios,
    flatten,
    summary,
)
from dl2llm.efficiency.int8_encoder_bench import interleaved, unpadded
from dl2llm.gpt_bench import GPTBenchConfig, compare_with_transformers
from dl2llm.rag.vector_store_bench import percentiles
from dl2llm.tokenizers.speed_bench import corpus_bytes, throughput


def answers(tokens: list[list[int]], decode_s: float = 1.0) -> list[Answer]:
    return [Answer(2.0, 0.5, decode_s, ids) for ids in tokens]


def test_summary_counts_decoded_tokens_after_the_first_and_same_answers():
    reference = answers([[1, 2, 3], [4, 5, 6]])
    row = summary(answers([[1, 2, 3], [4, 5, 7]], decode_s=0.5), reference)
    assert row["tokens_per_s"] == pytest.approx(4 / 1.0)  # 2 + 2 tokens after the first, 1 s
    assert row["p50_s"] == 2.0 and row["first_token_p50_s"] == 0.5
    assert row["same_answers"] == 1


def test_ratios_pick_the_fastest_variant_that_keeps_the_baselines_answers():
    rows = {
        "fp32": {"tokens_per_s": 10.0, "same_answers": 2},
        "fp32_all_cores": {"tokens_per_s": 15.0, "same_answers": 2},
        "int8": {"tokens_per_s": 30.0, "same_answers": 0},  # faster, other answers: no rival
        "compile": "skipped: not in --quick (compiling takes minutes)",
        "llamacpp": {"tokens_per_s": 45.0, "same_answers": 0},
        "llamacpp_1_thread": {"tokens_per_s": 60.0, "same_answers": 0},
    }
    ratios = add_ratios(rows)
    assert rows["int8"]["speedup"] == pytest.approx(3.0)
    assert ratios == {
        "best_transformers": "fp32_all_cores",
        "llamacpp_vs_best_transformers": pytest.approx(3.0),
        "best_llamacpp": "llamacpp_1_thread",
        "best_llamacpp_vs_best_transformers": pytest.approx(4.0),
    }
    assert flatten(rows)["fp32_all_cores_speedup"] == pytest.approx(1.5)
    assert flatten(rows)["compile"].startswith("skipped")


def test_the_generation_table_shows_numbers_and_skipped_rows():
    rows = {
        "fp32": {
            "threads": 1,
            "tokens_per_s": 18.0,
            "p50_s": 0.76,
            "first_token_p50_s": 0.374,
            "same_answers": 2,
        },
        "llamacpp": "skipped: no llama.cpp environment",
    }
    ratios = add_ratios(rows)
    bench = GenerationBench(rows, ratios, [180, 200], 8, None)
    lines = bench.table().splitlines()
    assert lines[1].split() == ["fp32", "1", "18.00", "0.76", "0.374", "1.00", "2/2"]
    assert lines[2] == f"{'llamacpp':<18} skipped: no llama.cpp environment"
    assert bench.metrics()["best_transformers"] == "fp32"


def test_each_padded_row_alone_is_cut_to_its_length():
    batch = {
        "input_ids": torch.tensor([[5, 6, 7], [8, 9, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0]]),
    }
    alone = unpadded(batch)
    assert [a["input_ids"].tolist() for a in alone] == [[[5, 6, 7]], [[8, 9]]]


def test_interleaved_timing_gives_a_median_per_run():
    calls = []
    runs = {"a": lambda x: calls.append(("a", x)), "b": lambda x: calls.append(("b", x))}
    seconds = interleaved(runs, [1, 2], rounds=2)
    assert calls[:4] == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]  # call by call, in turn
    assert set(seconds) == {"a", "b"} and set(seconds["a"]) == {"wall_s", "cpu_s"}


def test_percentiles_in_milliseconds():
    assert percentiles([0.001, 0.002, 0.003]) == {"p50_ms": 2.0, "p95_ms": 2.0}


def test_throughput_is_megabytes_per_second_with_the_ids():
    docs = ["ab", "cde"]
    ids, mb_per_s = throughput(lambda doc: [ord(c) for c in doc], docs, corpus_bytes(docs))
    assert ids == [[97, 98], [99, 100, 101]] and corpus_bytes(docs) == 5
    assert mb_per_s > 0


def test_our_gpt_and_transformers_give_the_same_greedy_tokens():
    torch.manual_seed(0)
    quick = GPTBenchConfig.quick()
    metrics, config = compare_with_transformers(replace(quick, repeats=1, new_tokens=4))
    assert metrics["same_tokens"] and metrics["new_tokens"] == 4
    assert config["n_layer"] == quick.model.n_layer and config["repeats"] == 1
    assert np.isfinite(metrics["kv_cache_speedup"])


def test_precision_bench_ratios_are_against_fp32_in_the_same_run(tmp_path):
    from dl2llm.efficiency.precision_bench import PrecisionBenchConfig, compare_precisions

    text = "def f(x):\n    return x + 1\n" * 40
    metrics, runs = compare_precisions(PrecisionBenchConfig.quick(), text, torch.device("cpu"))
    assert set(runs) == {"fp32", "bf16", "fp16"}
    assert all(len(run.losses) == 6 for run in runs.values())
    fp32, bf16 = runs["fp32"], runs["bf16"]
    assert metrics["bf16_speedup"] == pytest.approx(fp32.median_step_s / bf16.median_step_s)
    assert metrics["fp16_memory_ratio"] == pytest.approx(
        runs["fp16"].peak_memory_mib / fp32.peak_memory_mib
    )
    assert metrics["fp32_seed_noise_median_abs_loss_diff"] > 0  # another seed, another curve
    assert metrics["fp16_skipped_steps"] == runs["fp16"].skipped_steps
