"""The bert_fine_tuning deliverable in quick mode, its saved model, and predict-sentiment."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dl2llm import classification, paths

SCRIPT = paths.REPO_ROOT / "weeks" / "week3_embeddings" / "bert_fine_tuning.py"
CLI = ["-m", "dl2llm.cli", "predict-sentiment", "--quick"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=paths.REPO_ROOT
    )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bert")
    result = run(str(SCRIPT), "--quick", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    return out, result


def test_quick_run_reports_three_models_and_saves_the_classifier(quick_run):
    out, result = quick_run
    record = json.loads((out / "bert_fine_tuning.json").read_text())
    metrics = record["metrics"]
    assert record["mode"] == "quick" and metrics["n_train"] == 64 and metrics["n_test"] == 64
    for key in ("test_accuracy", "tfidf_test_accuracy", "frozen_embedding_test_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    assert sum(map(sum, metrics["test_confusion"])) == 64
    assert len(metrics["history"]) == 1 and metrics["best_epoch"] == 1
    assert sorted(record["artifacts"]) == [
        "bert_fine_tuning_confusion.png",
        "bert_fine_tuning_curves.png",
    ]
    for artifact in record["artifacts"]:
        assert (out / artifact).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "TF-IDF + LR" in result.stdout and "frozen MiniLM + LR" in result.stdout
    assert not (out / "checkpoints" / "bert_fine_tuning-quick.pt").exists()
    saved = classification.classifier_dir(quick=True)
    config = json.loads((saved / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}


def test_predict_uses_the_saved_model(quick_run):
    texts = ["A warm, funny film.", "Tedious."]
    script = run(str(SCRIPT), "--quick", "--predict", *texts)
    cli = run(*CLI, *texts)
    for result in (script, cli):
        assert result.returncode == 0, result.stderr[-2000:]
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 2
        for line, text in zip(lines, texts, strict=True):
            label, prob, rest = line.split(maxsplit=2)
            assert label in classification.LABELS and 0.5 <= float(prob) <= 1.0
            assert rest == text
    assert script.stdout == cli.stdout


@pytest.mark.parametrize(
    "command, texts, message",
    [
        (CLI, ["fine", ""], "text 2 is empty"),
        (CLI, ["word " * 700], "text 1 is 702 tokens long; the classifier reads at most 512"),
        ([str(SCRIPT), "--quick", "--predict"], ["   "], "text 1 is empty"),
    ],
)
def test_bad_input_is_one_line_exit_2(quick_run, command, texts, message):
    result = run(*command, *texts)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
