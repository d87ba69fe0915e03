"""BBQ bias score (Parrish et al., 2022) on hand-made answers, and the dataset loader."""

from __future__ import annotations

import pytest

from dl2llm.responsible.bbq import (
    bbq_scores,
    bias_counts,
    bias_score,
    bias_score_interval,
    gender_accuracy,
)
from dl2llm.responsible.benchmarks import BBQItem, load_bbq_gender


def item(ambiguous: bool, negative: bool, label: int) -> BBQItem:
    # answers: 0 = the man, 1 = unknown, 2 = the woman (the stereotyped group)
    return BBQItem(
        "ctx", "q?", ("The man", "Unknown", "The woman"), label, ambiguous, negative, 1, 2
    )


def test_disambiguated_bias_score_counts_biased_non_unknown_answers():
    items = [
        item(False, True, 2),
        item(False, True, 0),
        item(False, False, 0),
        item(False, False, 2),
    ]
    # neg question -> woman (biased); neg -> woman (biased); non-neg -> man (biased);
    # non-neg -> unknown (ignored)
    answers = [2, 2, 0, 1]
    assert bias_counts(items, answers) == (3, 3)
    assert bias_score(items, answers) == pytest.approx(2 * 3 / 3 - 1)


def test_ambiguous_bias_score_is_scaled_by_error_rate():
    items = [item(True, True, 1) for _ in range(4)]
    answers = [2, 2, 0, 1]  # 2 biased of 3 non-unknown; accuracy 1/4
    scores = bbq_scores(items, answers)
    assert scores["ambiguous"]["accuracy"]["value"] == pytest.approx(0.25)
    assert scores["ambiguous"]["bias_score"] == pytest.approx((1 - 0.25) * (2 * 2 / 3 - 1))
    assert scores["disambiguated"]["accuracy"]["n"] == 0


def test_always_unknown_has_zero_bias():
    items = [item(True, True, 1), item(True, False, 1)]
    assert bias_score(items, [1, 1]) == 0.0


def test_loader_marks_the_stereotyped_answer():
    items = load_bbq_gender()
    assert len(items) == 5656  # 16 of 5,672 rows have no single stereotyped answer
    first = items[0]  # "a man and a woman were late"; who was the secretary? (F stereotyped)
    assert first.answers[first.stereotyped_index] == "The woman"
    assert first.answers[first.unknown_index] == "Not enough information"
    assert first.ambiguous and first.negative_question and first.label == 1


def test_bias_score_interval_holds_the_score_and_shrinks_with_n():
    items = [item(True, True, 1), item(True, True, 1), item(True, False, 1), item(True, True, 1)]
    answers = [2, 0, 0, 1]  # biased, not, biased; accuracy 1/4
    expected = (1 - 0.25) * (2 * 2 / 3 - 1)
    assert bbq_scores(items, answers)["ambiguous"]["bias_score_interval"]["mean"] == pytest.approx(
        expected
    )
    widths = []
    for copies in (4, 64):
        interval = bias_score_interval(items * copies, answers * copies, ambiguous=True)
        assert interval["mean"] == pytest.approx(expected) and interval["n"] == 4 * copies
        assert interval["low"] <= interval["mean"] <= interval["high"]
        widths.append(interval["high"] - interval["low"])
    assert widths[1] < widths[0] / 2
    unknown_only = bias_score_interval(items, [1, 1, 1, 1], ambiguous=True)
    assert unknown_only == {"mean": 0.0, "low": 0.0, "high": 0.0, "n": 4}


def test_gender_accuracy_groups_by_the_right_answer():
    groups = ("male", "unknown", "female")
    items = [
        BBQItem("c", "q", ("The man", "Unknown", "The woman"), label, False, True, 1, 2, groups)
        for label in (0, 0, 2, 2)
    ]
    result = gender_accuracy(items, [0, 0, 2, 0])  # men: 2 of 2, women: 1 of 2
    assert result["n"] == 4 and result["by_group"] == {"female": 0.5, "male": 1.0}
    assert result["difference"] == pytest.approx(0.5)
    assert gender_accuracy(items[:1], [0], seed=0)["difference"] == 0.0  # one group: no gap
    first = load_bbq_gender()[0]  # "The woman" is the stereotyped answer
    assert first.answer_groups[first.stereotyped_index] == "female"
    assert first.answer_groups[first.unknown_index] == "unknown"
    assert sorted(first.answer_groups) == ["female", "male", "unknown"]
