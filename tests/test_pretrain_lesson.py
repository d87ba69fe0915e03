"""The pretrain_gpt lesson: a paused session resumes from its checkpoint, --restart ignores it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dl2llm import paths, pretrain_lesson
from dl2llm.pretrain import PretrainConfig


def test_settings_take_the_seed_and_the_step_count():
    assert pretrain_lesson.lesson_settings(True, 3) == replace(PretrainConfig.quick(), seed=3)
    assert pretrain_lesson.lesson_settings(True, 0, steps=7).max_steps == 7


@pytest.fixture
def asset_home(tmp_path, monkeypatch):
    """A fresh $DL2LLM_HOME that shares the text and tokenizer assets (the model goes here)."""
    home = tmp_path / "home"
    home.mkdir()
    for name in ("english-text", "gensim-data", "gpt2-bpe"):
        (home / name).symlink_to(paths.home() / name)
    monkeypatch.setenv("DL2LLM_HOME", str(home))
    return home


@pytest.mark.slow
def test_a_paused_session_resumes_and_restart_starts_over(asset_home, tmp_path):
    settings = pretrain_lesson.lesson_settings(True, 0, steps=4)
    out = tmp_path / "results"
    paused = pretrain_lesson.run_lesson(settings, out, "cpu", quick=True, stop_after=2)
    assert paused.paused and paused.steps_done == 2 and paused.checkpoint.is_file()
    assert not (asset_home / "gpt2-dl2llm-quick").exists()

    done = pretrain_lesson.run_lesson(settings, out, "cpu", quick=True)
    assert not done.paused and done.metrics["resumed_from_step"] == 2
    assert done.metrics["steps"] == 4 and done.config["max_steps"] == 4
    assert done.folder == asset_home / "gpt2-dl2llm-quick"
    assert done.metrics["hf_reload_val_loss"] == pytest.approx(done.metrics["val_loss"], abs=1e-4)
    assert done.metrics["sample"].startswith(pretrain_lesson.PROMPT)
    assert not done.checkpoint.exists()
    assert done.artifacts == ["pretrain_gpt_curves.png"]
    assert (out / "pretrain_gpt_curves.png").read_bytes()[:4] == b"\x89PNG"

    pretrain_lesson.run_lesson(settings, out, "cpu", quick=True, stop_after=2)
    again = pretrain_lesson.run_lesson(settings, out, "cpu", quick=True, restart=True)
    assert again.metrics["resumed_from_step"] == 0
    assert again.metrics["val_loss"] == done.metrics["val_loss"]
