"""Group fairness (fairlearn MetricFrame) on hand-made labels, and its bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest

from dl2llm.data import LabelledTexts
from dl2llm.responsible.counterfactual import CounterfactualPair
from dl2llm.responsible.fairness import (
    accuracy_by_group,
    gender_fairness,
    gender_of,
    group_metrics,
    paired_gap_intervals,
)

Y_TRUE = [1, 1, 0, 0]
FEMALE_PRED = [1, 0, 0, 1]  # one false negative, one false positive
MALE_PRED = [1, 1, 0, 0]  # all right


def test_metric_frame_rates_match_hand_computed_rates():
    result = group_metrics(Y_TRUE * 2, FEMALE_PRED + MALE_PRED, ["female"] * 4 + ["male"] * 4)
    female = {m: by_group["female"] for m, by_group in result["by_group"].items()}
    assert female == {
        "accuracy": 0.5,
        "false_positive_rate": 0.5,  # 1 of 2 negatives predicted positive
        "false_negative_rate": 0.5,  # 1 of 2 positives predicted negative
        "selection_rate": 0.5,
    }
    assert result["by_group"]["accuracy"]["male"] == 1.0
    assert result["by_group"]["false_positive_rate"]["male"] == 0.0
    assert result["difference"] == {
        "accuracy": 0.5,
        "false_positive_rate": 0.5,
        "false_negative_rate": 0.5,
        "selection_rate": 0.0,
    }
    assert result["n_by_group"] == {"female": 4, "male": 4}


def test_gap_intervals_hold_the_metric_frame_gap_and_shrink_with_n():
    small = paired_gap_intervals(
        np.array(Y_TRUE * 4), np.array(FEMALE_PRED * 4), np.array(MALE_PRED * 4)
    )
    large = paired_gap_intervals(
        np.array(Y_TRUE * 64), np.array(FEMALE_PRED * 64), np.array(MALE_PRED * 64)
    )
    for result, n in ((small, 16), (large, 256)):
        accuracy = result["accuracy"]
        assert accuracy["mean"] == pytest.approx(0.5) and accuracy["n"] == n
        assert accuracy["low"] <= accuracy["mean"] <= accuracy["high"]
    width = {
        name: r["accuracy"]["high"] - r["accuracy"]["low"]
        for name, r in (("s", small), ("l", large))
    }
    assert width["l"] < width["s"] / 2  # about 1 / sqrt(16) as wide
    assert large["selection_rate"]["mean"] == 0.0


def test_gender_of_needs_exactly_one_gender():
    assert gender_of("His brother is great.") == "male"
    assert gender_of("The actress and her mother.") == "female"
    assert gender_of("He and she.") is None
    assert gender_of("Shepherd's pie.") is None  # whole words only


def test_gender_fairness_pairs_each_sentence_with_its_swapped_twin():
    test = LabelledTexts(["He was great.", "She was awful.", "Adam was fine."], [1, 0, 1])
    pairs = [
        CounterfactualPair("He was great.", "She was great.", "pronoun", "real"),
        CounterfactualPair("She was awful.", "He was awful.", "pronoun", "real"),
        CounterfactualPair("Adam was fine.", "Jamal was fine.", "name", "real"),
        CounterfactualPair("He said so.", "She said so.", "pronoun", "template"),
    ]
    # p(positive) of (original, swapped): "She was great." -> negative (a false negative
    # for the female version); "He was awful." -> positive (a false positive for male)
    scores = np.array([[0.9, 0.3], [0.1, 0.7], [0.9, 0.1], [0.5, 0.5]])
    result = gender_fairness(pairs, scores, test)
    assert result["n_pairs"] == 2  # the name pair and the template pair are left out
    assert result["by_group"]["false_negative_rate"] == {"female": 1.0, "male": 0.0}
    assert result["by_group"]["false_positive_rate"] == {"female": 0.0, "male": 1.0}
    assert result["difference"]["accuracy"] == 0.0  # each version gets one of two right
    assert result["gap_intervals"]["false_negative_rate"]["mean"] == 1.0


def test_accuracy_by_group_matches_hand_computed_accuracy():
    # three classes; group a: 3 of 4 right, group b: 1 of 2 right
    result = accuracy_by_group([0, 1, 2, 0, 1, 2], [0, 1, 2, 1, 1, 0], ["a"] * 4 + ["b"] * 2)
    assert result["by_group"] == {"a": 0.75, "b": 0.5}
    assert result["difference"] == pytest.approx(0.25)
    interval = result["difference_interval"]
    assert interval["low"] <= interval["mean"] <= interval["high"] and interval["n"] == 6
