"""bias_audit's lesson module: earlier audits in the results folder, and the model cards."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dl2llm.errors import UsageError
from dl2llm.responsible.audit_lesson import earlier_audits, models_to_audit, write_model_cards
from dl2llm.results import save_results


def save(out: Path, model: str, quick: bool, metrics: dict) -> None:
    save_results(f"bias_audit_{model}", metrics, out_dir=out, config={}, seed=0, quick=quick,
                 started=time.perf_counter())  # fmt: skip


def test_earlier_audits_keep_the_same_mode_and_leave_out_details(tmp_path):
    save(tmp_path, "gpt2", True, {"gpt2_score": 0.5, "details": {}, "limitations": {}})
    save(tmp_path, "smollm2", True, {"smollm2_score": 0.6})
    save(tmp_path, "sentiment", False, {"sentiment_flip": 0.1})  # full mode: not gathered
    numbers, seconds = earlier_audits(tmp_path, quick=True, skip=("smollm2",))
    assert numbers == {"gpt2_score": 0.5}
    assert seconds >= 0.0
    assert earlier_audits(tmp_path, quick=False, skip=())[0] == {"sentiment_flip": 0.1}


def test_cards_are_written_for_the_audited_project_models(tmp_path):
    save(tmp_path, "sentiment", True, {"sentiment_flip_rate_after": 0.0})
    assert write_model_cards(tmp_path, ("smollm2", "gpt2"), adapted=False) == []
    assert write_model_cards(tmp_path, ("smollm2", "sentiment"), adapted=False) == [
        "MODEL_CARD_sentiment.md"
    ]
    assert (tmp_path / "MODEL_CARD_sentiment.md").is_file()


def test_all_means_every_model():
    assert models_to_audit("all", None) == ("smollm2", "gpt2", "sentiment")
    with pytest.raises(UsageError, match="unknown model"):
        models_to_audit("bert", None)
