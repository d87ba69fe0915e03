"""attention_demo: MiniLM's attention recomputed exactly, the comparison table, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from dl2llm import paths
from dl2llm.attention import MultiHeadAttention
from dl2llm.attention_lesson import crossover_length, train_step_ms, verdict

SCRIPT = paths.REPO_ROOT / "weeks/week2_transformers/attention_demo.py"


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import attention_demo
    finally:
        sys.path.remove(str(SCRIPT.parent))
    out = tmp_path_factory.mktemp("attention_demo")
    argv = ["--quick", "--lengths", "8,32", "--width", "32", "--out", str(out)]
    assert attention_demo.main(argv) == 0
    return out, json.loads((out / "attention_demo.json").read_text())


def test_minilm_attention_is_recomputed_within_1e_6(record):
    _, result = record
    assert result["metrics"]["minilm_attention_max_abs_diff"] < 1e-6
    animal = "The animal didn't cross the street because it was too tired."
    assert "animal" in result["metrics"]["it_attends_to"][animal]


def test_table_has_exact_path_lengths_and_plots(record):
    out, result = record
    rows = result["metrics"]["rows"]
    assert [r["seq_len"] for r in rows] == [8, 32]
    assert [r["lstm_path_length"] for r in rows] == [7, 31]
    assert [r["attention_path_length"] for r in rows] == [1, 1]
    assert all(r["lstm_ms"] > 0 and r["attention_ms"] > 0 for r in rows)
    for r in rows:
        faster = "attention" if r["attention_train_ms"] < r["lstm_train_ms"] else "LSTM"
        assert r["train_step_winner"] == faster and r["lstm_train_ms"] > 0
    # the LSTM's signal from the first token fades with distance; attention's does not vanish
    assert rows[1]["lstm_first_token_gradient"] < 1e-4 < rows[0]["lstm_first_token_gradient"]
    assert rows[1]["attention_first_token_gradient"] > 1e-2
    metrics = result["metrics"]
    assert metrics["max_seq_len"] == 32
    assert (
        metrics["train_threads"]
        == len(os.sched_getaffinity(0))
        == result["config"]["train_threads"]
    )
    longest = rows[-1]
    assert metrics["attention_train_step_speedup_at_max_len"] == pytest.approx(
        longest["lstm_train_ms"] / longest["attention_train_ms"]
    )
    assert "O(T^2)" in metrics["verdict"] and "sequential" in metrics["verdict"]
    for artifact in result["artifacts"]:
        assert (out / artifact).stat().st_size > 10_000


@pytest.mark.parametrize(
    ("make", "forward"),
    [
        (lambda: nn.LSTM(8, 8, batch_first=True), lambda layer, x: layer(x)[0]),
        (lambda: MultiHeadAttention(8, 2), lambda layer, x: layer(x, x, x)),
    ],
)
def test_train_step_timing_runs_the_backward_pass(make, forward):
    layer = make()
    assert all(p.grad is None for p in layer.parameters())
    ms = train_step_ms(lambda x: forward(layer, x), layer, torch.randn(2, 5, 8), 0.01, threads=1)
    assert ms > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.parameters())


def test_crossover_and_verdict_name_the_winners():
    def rows(*winners):
        return [{"seq_len": 16 * 4**i, "train_step_winner": w} for i, w in enumerate(winners)]

    mixed = rows("attention", "attention", "LSTM", "LSTM")
    assert crossover_length(mixed) == 256
    assert "wins at T in [16, 64], the LSTM at T in [256, 1024]" in verdict(mixed, 2)
    assert "from T=256 on" in verdict(mixed, 2) and "On 2 CPU thread(s)" in verdict(mixed, 2)
    assert crossover_length(rows("attention", "LSTM", "attention")) is None
    assert "no crossover up to T=256" in verdict(rows("attention", "LSTM", "attention"), 2)
    assert "faster at every length up to T=64" in verdict(rows("attention", "attention"), 2)
    assert crossover_length(rows("LSTM", "LSTM")) == 16
    assert "the LSTM is faster at every length" in verdict(rows("LSTM", "LSTM"), 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lengths", "8,x"], "comma-separated integers"),
        (["--lengths", "1"], "at least 2"),
        (["--width", "30", "--heads", "4"], "divisible"),
        (["--layer", "9"], "between 0 and 5"),
    ],
)
def test_bad_input_exits_2_with_a_message(args, message, tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path), *args],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert message in result.stderr
