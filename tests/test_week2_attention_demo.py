"""attention_demo: MiniLM's attention recomputed exactly, the comparison table, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dl2llm import paths

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
    # the LSTM's signal from the first token fades with distance; attention's does not vanish
    assert rows[1]["lstm_first_token_gradient"] < 1e-4 < rows[0]["lstm_first_token_gradient"]
    assert rows[1]["attention_first_token_gradient"] > 1e-2
    assert result["metrics"]["max_seq_len"] == 32
    for artifact in result["artifacts"]:
        assert (out / artifact).stat().st_size > 10_000


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
