"""The pretrain_gpt lesson: held-out files, settings, and a quick run that pauses and resumes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dl2llm import paths, pretrain_lesson
from dl2llm.pretrain_lesson import PretrainLessonConfig
from dl2llm.tokenizers.bpe import ByteBPETokenizer


def test_settings_take_the_seed_and_the_step_count():
    quick = PretrainLessonConfig.quick()
    seeded = pretrain_lesson.lesson_settings(True, 3)
    assert seeded == replace(quick, pretrain=replace(quick.pretrain, seed=3))
    assert pretrain_lesson.lesson_settings(True, 0, steps=7).pretrain.max_steps == 7
    assert PretrainLessonConfig().vocab_size == 4096 and quick.vocab_size == 512


def test_every_40th_documentation_file_is_held_out():
    splits = pretrain_lesson.docs_splits(PretrainLessonConfig())
    assert (len(splits["train"]), len(splits["val"])) == (485, 12)
    assert not set(splits["train"]) & set(splits["val"])
    quick = pretrain_lesson.docs_splits(PretrainLessonConfig.quick())
    assert (len(quick["train"]), len(quick["val"])) == (36, 4)


def test_the_reference_slice_is_whole_lines_of_the_validation_text():
    docs = ["first line\nsecond line\n", "third line\n"]
    assert pretrain_lesson.reference_slice(docs, 20) == "first line\n"
    assert pretrain_lesson.reference_slice(docs, 1000) == "\n".join(docs)


@pytest.fixture
def asset_home(tmp_path, monkeypatch):
    """A fresh $DL2LLM_HOME that shares the text and tokenizer assets (models go here)."""
    home = tmp_path / "home"
    home.mkdir()
    for name in ("english-text", "gensim-data", "gpt2-bpe", "python-docs"):
        (home / name).symlink_to(paths.home() / name)
    monkeypatch.setenv("DL2LLM_HOME", str(home))
    return home


@pytest.mark.slow
def test_a_paused_session_resumes_and_restart_starts_over(asset_home, tmp_path):
    settings = pretrain_lesson.lesson_settings(True, 0, steps=4)
    settings = replace(settings, reference_bytes=0)  # no SmolLM2 in this fresh asset home
    out = tmp_path / "results"
    paused = pretrain_lesson.run_lesson(settings, out, "cpu", quick=True, stop_after=2)
    assert paused.paused and paused.steps_done == 2 and paused.checkpoint.is_file()

    done = pretrain_lesson.run_lesson(settings, out, "cpu", quick=True)
    metrics = done.metrics
    assert not done.paused and metrics["resumed_from_step"] == 2 and metrics["steps"] == 4
    assert 3.0 < metrics["val_bpb"] < 9.0 and 0.5 < metrics["kn_val_bpb"] < 3.0
    assert metrics["bpb_gain_over_kn"] == metrics["kn_val_bpb"] - metrics["val_bpb"]
    assert metrics["smollm2_slice_bpb"] is None  # reference_bytes=0 skips the 135M reference
    assert 0 < metrics["mfu"] < 1 and metrics["peak_gflops"] > 0
    assert all(
        s.startswith(p) for s, p in zip(metrics["samples"], pretrain_lesson.PROMPTS, strict=True)
    )
    assert metrics["project_gpt2"] == "trained"
    assert (asset_home / "gpt2-dl2llm-quick" / "config.json").is_file()
    assert not done.checkpoint.exists()
    assert done.artifacts == ["pretrain_gpt_curves.png", "pretrain_gpt_tokenizer.json"]
    assert (out / "pretrain_gpt_curves.png").read_bytes()[:4] == b"\x89PNG"
    tokenizer = ByteBPETokenizer.load(out / "pretrain_gpt_tokenizer.json")
    assert (
        tokenizer.vocab_size == 512 and tokenizer.decode(tokenizer.encode("def f():")) == "def f():"
    )

    pretrain_lesson.run_lesson(settings, out, "cpu", quick=True, stop_after=2)
    again = pretrain_lesson.run_lesson(settings, out, "cpu", quick=True, restart=True)
    assert again.metrics["resumed_from_step"] == 0 and again.metrics["project_gpt2"] == "present"
    assert again.metrics["val_bpb"] == metrics["val_bpb"]
