"""The tokenizer_experiments deliverable: custom data folders and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from scripts import load_script

from dl2llm import paths
from dl2llm.data import english_text, read_text_folder
from dl2llm.runtime import UsageError
from dl2llm.tokenizers.evaluation import evaluate
from dl2llm.tokenizers.wordpiece import WordPieceTokenizer

SCRIPT = paths.REPO_ROOT / "weeks" / "week2_transformers" / "tokenizer_experiments.py"


@pytest.fixture(scope="module")
def script():
    return load_script(str(SCRIPT.relative_to(paths.REPO_ROOT)))


@pytest.fixture
def corpus_dir(tmp_path):
    lines = [line for line in english_text().splitlines() if line.strip()][:500]
    folder = tmp_path / "corpus"
    (folder / "part").mkdir(parents=True)
    (folder / "a.txt").write_text("\n".join(lines[:250]) + "\n", encoding="utf-8")
    (folder / "part" / "b.md").write_text("\n".join(lines[250:]) + "\n", encoding="utf-8")
    return folder


def test_custom_folder_runs_all_three(script, corpus_dir, tmp_path):
    out = tmp_path / "out"
    sentence = "Ünïcode and 日本 stay intact."
    argv = ["--quick", "--data", str(corpus_dir), "--vocab-sizes", "280", "--out", str(out)]
    assert script.main([*argv, "--sentence", sentence]) == 0
    record = json.loads((out / "tokenizer_experiments.json").read_text())
    metrics = record["metrics"]
    assert record["config"]["data"] == str(corpus_dir)
    assert [r["tokenizer"] for r in metrics["runs"]] == ["bpe", "wordpiece", "unigram"]
    bpe = metrics["runs"][0]
    assert bpe["vocab_size"] == 280 and bpe["unk_rate"] == 0.0
    assert all(r["vocab_size"] <= 280 and r["bytes_per_token"] > 1 for r in metrics["runs"])
    bpe_tokens = metrics["example_tokens"]["bpe"]
    assert bpe_tokens[:2] == ["\\xc3", "\\x9c"]  # "Ü" is two bytes, not yet merged
    assert bpe_tokens[-1] == "."
    assert "[UNK]" in metrics["example_tokens"]["wordpiece"]  # 日 never seen in training
    assert (out / "tokenizer_experiments_vocab_sizes.png").stat().st_size > 10_000


def test_non_utf8_file_is_a_usage_error(script, corpus_dir, tmp_path):
    (corpus_dir / "latin1.txt").write_bytes("café au lait".encode("latin-1"))
    with pytest.raises(UsageError, match=r"latin1\.txt' is not UTF-8 text"):
        script.main(["--quick", "--data", str(corpus_dir), "--out", str(tmp_path)])
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--data", str(corpus_dir), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "is not UTF-8 text" in result.stderr and "Traceback" not in result.stderr


def test_vocab_smaller_than_the_byte_alphabet_is_a_usage_error(script, tmp_path):
    with pytest.raises(UsageError, match=r"smaller than the byte alphabet .*\(256\)"):
        script.main(["--quick", "--vocab-sizes", "100", "--out", str(tmp_path)])


def test_missing_empty_and_tiny_folders_are_usage_errors(script, tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        read_text_folder(tmp_path / "nowhere")
    (tmp_path / "empty" / ".git").mkdir(parents=True)
    (tmp_path / "empty" / ".git" / "HEAD").write_bytes(b"\xff\xfe binary")  # hidden: skipped
    with pytest.raises(UsageError, match="contains no files"):
        read_text_folder(tmp_path / "empty")
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "one.txt").write_text("just one line\n")
    with pytest.raises(UsageError, match="need at least 20 non-empty lines"):
        script.main(["--quick", "--data", str(tmp_path / "tiny"), "--out", str(tmp_path)])


def test_metrics_count_what_they_claim():
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "a": 4, "b": 5, "##b": 6}
    report = evaluate("wordpiece", WordPieceTokenizer(vocab), "ab b zz", 0.5, 7)
    # "ab" -> a ##b, "b" -> b, "zz" -> [UNK]: 4 tokens, 3 words, 7 bytes, 1 unknown
    assert report.fertility == pytest.approx(4 / 3)
    assert report.bytes_per_token == pytest.approx(7 / 4)
    assert report.unk_rate == pytest.approx(1 / 4)
    assert report.train_s == 0.5 and report.requested_vocab_size == 7
