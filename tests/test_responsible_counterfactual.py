"""Counterfactual swaps give the expected sentences; flip-rate, gap and CDA-set arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from dl2llm.data import LabelledTexts
from dl2llm.responsible.counterfactual import (
    TEMPLATE_FILLERS,
    TEMPLATES,
    augment,
    flip_statistics,
    swap_attribute,
    templated_pairs,
)
from dl2llm.responsible.mitigation import compare, fine_tuning_sets, summary
from dl2llm.responsible.stats import paired_difference


@pytest.mark.parametrize(
    ("attribute", "text", "expected"),
    [
        ("name", "Adam loved it, Lakisha did not.", "Jamal loved it, Emily did not."),
        (
            "name",
            "It starts to peter out; Peter saves it.",
            "It starts to peter out; Deion saves it.",
        ),
        ("pronoun", "He told his father about her film.", "She told her mother about his film."),
        (
            "pronoun",
            "The actress gave her all; we loved her.",
            "The actor gave his all; we loved him.",
        ),
        ("pronoun", "Her husband made her a star.", "His wife made him a star."),
        ("nationality", "An American film by a German.", "An Mexican film by a Chinese."),
        ("religion", "The Christian choir sang in church.", "The Muslim choir sang in mosque."),
    ],
)
def test_swap_attribute_gives_expected_sentence(attribute, text, expected):
    assert swap_attribute(text, attribute) == expected


def test_no_attribute_word_means_no_pair():
    assert swap_attribute("A lovely film.", "pronoun") is None
    assert swap_attribute("Theme and hero.", "pronoun") is None  # whole words only
    assert swap_attribute("A frank, honest adam.", "name") is None  # names are capitalised


def test_unknown_attribute_is_refused():
    with pytest.raises(ValueError, match="unknown attribute"):
        swap_attribute("He left.", "age")


def test_flip_statistics():
    original = np.array([0.9, 0.6, 0.2, 0.4])
    swapped = np.array([0.8, 0.4, 0.2, 0.6])  # flips at 2 and 4
    stats = flip_statistics(original, swapped)
    assert stats["flip_rate"]["value"] == pytest.approx(0.5)
    assert stats["flip_rate"]["n"] == 4
    assert stats["score_gap"]["value"] == pytest.approx((0.1 + 0.2 + 0.0 - 0.2) / 4)
    assert stats["abs_score_gap"]["value"] == pytest.approx(0.5 / 4)
    assert stats["flip_rate"]["low"] < 0.5 < stats["flip_rate"]["high"]


def test_augment_adds_one_swapped_copy_per_attribute():
    data = LabelledTexts(["He is American.", "Fine film."], [1, 0])
    augmented = augment(data)
    assert augmented.texts == [
        "He is American.", "Fine film.", "She is American.", "He is Mexican."
    ]  # fmt: skip
    assert augmented.labels == [1, 0, 1, 1]


def test_templated_pairs_differ_only_in_the_attribute():
    pairs = templated_pairs()
    assert len(pairs) == len(TEMPLATES) * sum(map(len, TEMPLATE_FILLERS.values()))
    assert pairs[0].swapped == "Jamal said the movie was wonderful."
    for pair in pairs:
        original, swapped = pair.original.split(), pair.swapped.split()
        assert len(original) == len(swapped)
        assert 1 <= sum(a != b for a, b in zip(original, swapped, strict=True)) <= 2
    assert len(templated_pairs(2)) == 2 * sum(map(len, TEMPLATE_FILLERS.values()))


def test_control_and_cda_sets_differ_only_in_the_swapped_copies():
    train = LabelledTexts(
        ["He is great.", "Dull.", "Fine.", "A German film.", "Meh."], [1, 0, 1, 0, 0]
    )
    sets = fine_tuning_sets(train, n_with_attribute=None, n_without_attribute=2)
    base = ["He is great.", "A German film.", "Dull.", "Fine."]
    assert sets["control"].texts == base + ["He is great.", "A German film."]
    assert sets["cda"].texts == base + ["She is great.", "A Chinese film."]
    assert sets["control"].labels == sets["cda"].labels == [1, 0, 0, 1, 1, 0]


def test_paired_difference_is_tighter_than_the_spread_of_either_side():
    rng = np.random.default_rng(0)
    shared = rng.uniform(0, 1, 400)  # what both measurements share (the pair's difficulty)
    diff = paired_difference(shared - 0.01, shared)
    assert diff["value"] == pytest.approx(-0.01)
    assert diff["high"] - diff["low"] < 1e-9  # a constant shift is measured exactly


def test_compare_reports_a_halved_gap_and_the_accuracy_change():
    templated = templated_pairs(1)  # 50 pairs
    test = LabelledTexts(["a", "b", "c", "d"], [1, 0, 1, 0])
    gaps = np.linspace(0.02, 0.2, len(templated))
    before = {
        "pairs": np.stack([0.5 + gaps, 0.5 - gaps], 1),
        "test": np.array([0.9, 0.1, 0.2, 0.3]),
    }
    after = {
        "pairs": np.stack([0.5 + gaps / 2, 0.5 - gaps / 2], 1),
        "test": np.array([0.9, 0.1, 0.8, 0.6]),
    }
    change = compare(after, before, test, templated)
    gap_change = change["template"]["all"]["abs_score_gap"]
    assert gap_change["value"] == pytest.approx(-np.mean(2 * gaps) / 2)
    assert gap_change["high"] < 0
    assert change["test_accuracy"]["value"] == pytest.approx(
        0.0
    )  # 3/4 -> 3/4: one fixed, one broken
    assert summary(after, test, templated)["test_accuracy"]["value"] == pytest.approx(0.75)
    flips = change["template"]["all"]["flip_rate"]
    assert flips["value"] == pytest.approx(0.0)  # every pair straddles 0.5 before and after
