"""Counterfactual swaps give the expected sentences; flip-rate and gap arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from dl2llm.data import LabelledTexts
from dl2llm.responsible.counterfactual import (
    augment,
    flip_statistics,
    swap_attribute,
    templated_pairs,
)


@pytest.mark.parametrize(
    ("attribute", "text", "expected"),
    [
        ("name", "Adam loved it, Lakisha did not.", "Jamal loved it, Emily did not."),
        ("pronoun", "He told his father about her film.", "She told her mother about his film."),
        ("nationality", "An American film by a German.", "An Mexican film by a Chinese."),
        ("religion", "The Christian choir sang in church.", "The Muslim choir sang in mosque."),
    ],
)
def test_swap_attribute_gives_expected_sentence(attribute, text, expected):
    assert swap_attribute(text, attribute) == expected


def test_no_attribute_word_means_no_pair():
    assert swap_attribute("A lovely film.", "pronoun") is None
    assert swap_attribute("Theme and hero.", "pronoun") is None  # whole words only


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
    assert len(pairs) == 6 * (8 + 4 + 4 + 4)  # templates x fillers per attribute
    assert all(p.original != p.swapped for p in pairs)
    assert pairs[0].swapped == "Jamal said the movie was wonderful."
