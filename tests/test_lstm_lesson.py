"""lstm_language_model's lesson: corpora, --data validation, samples from both models."""

from __future__ import annotations

import math

import pytest
import torch
from scripts import load_script

from dl2llm.errors import UsageError
from dl2llm.nn.lstm_lesson import CORPORA, LSTMLessonConfig, corpus_splits, run_lesson
from dl2llm.nn.lstm_lm import LMTrainConfig


def test_unknown_corpus_is_a_usage_error():
    with pytest.raises(UsageError, match="--data must be one of python-docs, botchan"):
        LSTMLessonConfig(data="ptb")
    with pytest.raises(UsageError, match="got 'ptb'"):
        corpus_splits("ptb")
    script = load_script("weeks/week1_foundations/lstm_language_model.py")
    with pytest.raises(UsageError, match="got 'wiki'"):
        script.main(["--quick", "--data", "wiki"])


def test_python_docs_splits_are_capped_disjoint_blocks():
    splits = corpus_splits("python-docs", max_chars=100_000)
    total = sum(len(text) for text in splits.values())
    assert 90_000 < total <= 100_000 + 3  # cut at a line end, each split ends with "\n"
    assert len(splits["train"]) > 10 * len(splits["val"])
    assert splits["val"].splitlines()[0] not in splits["train"].splitlines()[-1:]
    assert corpus_splits("python-docs", max_chars=100_000) == splits  # a fixed shuffle


def test_full_runs_differ_by_corpus():
    docs, botchan = (LSTMLessonConfig.for_data(name) for name in CORPORA)
    assert (docs.data, botchan.data) == ("python-docs", "botchan")
    assert docs.max_vocab == 10_000 and botchan.train.epochs == 12


def test_lesson_reports_the_ratio_and_samples_from_both_models(tmp_path):
    config = LSTMLessonConfig.quick("botchan")
    config.dim, config.train_tokens, config.sample_words = 16, 2000, 5
    config.train = LMTrainConfig(epochs=1, batch_size=8)
    metrics, artifacts = run_lesson(config, tmp_path, 0, torch.device("cpu"), resume=False)
    assert metrics["data"] == "botchan" and metrics["train_tokens"] == 2000
    ratio = metrics["test_perplexity"] / metrics["kn_test_perplexity"]
    assert metrics["lstm_to_kn_perplexity_ratio"] == pytest.approx(ratio, rel=1e-12)
    assert metrics["lstm_beats_kn"] == (ratio < 1)
    samples = metrics["samples"]
    assert set(samples) == {"prompt", "lstm", "kneser_ney"}
    for model in ("lstm", "kneser_ney"):
        assert set(samples[model]) == {"temperature 0.7", "temperature 1.0"}
        assert all(len(text.split()) == 5 for text in samples[model].values())
    assert 0 < metrics["test_unk_rate"] < 1 and math.isfinite(metrics["kn_val_perplexity"])
    assert (tmp_path / artifacts[0]).is_file() and (tmp_path / "lstm_language_model.ckpt").is_file()
