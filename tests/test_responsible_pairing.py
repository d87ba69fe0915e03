"""The CLP experiment: held-out probe names and templates, matched arms, exact gap numbers."""

from __future__ import annotations

import re

import numpy as np
import pytest
from tiny import tiny_bert_classifier

from dl2llm import models
from dl2llm.classification import FineTuneConfig
from dl2llm.data import LabelledTexts
from dl2llm.responsible.counterfactual import SWAPS, TEMPLATES, fill_templates
from dl2llm.responsible.pairing_experiment import (
    PairingConfig,
    accuracy_change,
    gap_metrics,
    pairing_experiment,
    pairing_headline,
    split_probes,
    training_pairs,
)


def test_train_and_probe_halves_are_disjoint():
    split = split_probes()
    assert not set(split.train_templates) & set(split.probe_templates)
    assert set(split.train_templates) | set(split.probe_templates) == set(TEMPLATES)
    for attribute in split.train_fillers:
        assert not set(split.train_fillers[attribute]) & set(split.probe_fillers[attribute])
    train_names = set(split.train_fillers["name"]) | {
        SWAPS["name"][n] for n in split.train_fillers["name"]
    }
    assert len(split.probe_names()) == 24 and not train_names & split.probe_names()
    probe = fill_templates(split.probe_templates, split.probe_fillers)
    assert len(probe) == 12 * (12 + 5 + 4 + 4)
    # real sentences that mention a probe name (on either side of the swap) are left out
    real = LabelledTexts(
        ["Harry was great.", "Leroy was dull.", "Adam was fine.", "He was fine."], [1, 0, 1, 1]
    )
    originals, swapped = training_pairs(split, real, seed=3)
    assert len(originals) == 12 * (12 + 5 + 4 + 4) + 2
    assert {"Adam was fine.", "He was fine."} <= set(originals)
    names = re.compile(rf"\b({'|'.join(split.probe_names())})\b")
    assert not any(names.search(t) for t in originals + swapped)
    assert not {p.original for p in probe} & set(originals + swapped)


def test_gap_metrics_on_a_hand_built_case():
    # 2 seeds x 2 probe pairs of p(positive | original), p(positive | swapped)
    baseline = np.array([[[0.9, 0.7], [0.4, 0.5]], [[0.8, 0.6], [0.5, 0.5]]])
    clp = np.array([[[0.9, 0.8], [0.5, 0.5]], [[0.7, 0.7], [0.5, 0.6]]])
    gaps = gap_metrics(baseline, clp)
    assert gaps["baseline_signed_gap"] == pytest.approx((0.2 - 0.1 + 0.2 + 0.0) / 4)
    assert gaps["baseline_abs_gap"] == pytest.approx(0.5 / 4)
    assert gaps["clp_signed_gap"] == pytest.approx((0.1 + 0.0 + 0.0 - 0.1) / 4)
    assert gaps["clp_abs_gap"] == pytest.approx(0.2 / 4)
    assert gaps["abs_gap_reduction"]["mean"] == pytest.approx(0.3 / 4)
    assert gaps["abs_gap_reduction_by_seed"] == pytest.approx([0.1, 0.05])
    assert gaps["relative_abs_gap_reduction"] == pytest.approx(0.6)
    interval = gaps["abs_gap_reduction"]
    assert interval["low"] <= interval["mean"] <= interval["high"] and interval["n"] == 2
    # seed 2 twice and its second pair twice (chance 1/16 > 2.5%): -0.1; its first pair: 0.2
    assert interval["low"] == pytest.approx(-0.1) and interval["high"] == pytest.approx(0.2)
    change = accuracy_change(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 1, 1]]))
    assert change["mean"] == pytest.approx(25.0) and change["by_seed"] == [25.0]
    assert change["baseline_accuracy"] == 0.5 and change["clp_accuracy"] == 0.75
    headline = pairing_headline(
        {
            "gaps": gaps,
            "accuracy_change_pts": change,
            "deployed_abs_gap": 0.2,
        }
    )
    assert headline["clp_abs_gap_reduction"] == pytest.approx(0.075)
    assert headline["clp_accuracy_loss_pts"] == pytest.approx(-25.0)
    assert headline["clp_abs_gap_reduction_low"] == interval["low"]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(models.encoder_path())


def tiny_experiment(tokenizer, weight: float) -> dict:
    model = tiny_bert_classifier(0, training=True, vocab_size=30522)  # dropout 0.1
    texts = ["he liked it", "she hated it", "a good film", "a bad film", "Adam smiled"] * 2
    data = {
        "train": LabelledTexts(texts, [1, 0, 1, 0, 1] * 2),
        "test": LabelledTexts(["good", "bad", "he was good"], [1, 0, 1]),
    }
    tuning = FineTuneConfig(epochs=1, batch_size=4, learning_rate=1e-3, max_length=32)
    config = PairingConfig(weight, seeds=(0, 1), n_train=8, n_probe_templates=1, fine_tune=tuning)
    return pairing_experiment((model, tokenizer), data, config)


def test_arms_differ_only_in_the_pairing_weight(tokenizer):
    """Weight 0 in the CLP arm reproduces the baseline exactly: same data order, same dropout."""
    same = tiny_experiment(tokenizer, weight=0.0)
    assert same["n_probe_pairs"] == 25 and same["n_training_pairs"] == 12 * 25 + 6
    assert same["gaps"]["abs_gap_reduction"]["mean"] == 0.0
    assert same["gaps"]["abs_gap_reduction"]["low"] == same["gaps"]["abs_gap_reduction"]["high"]
    assert same["histories"]["baseline"] == same["histories"]["clp"]
    paired = tiny_experiment(tokenizer, weight=5.0)
    assert paired["histories"]["baseline"] == same["histories"]["baseline"]
    assert paired["histories"]["clp"] != paired["histories"]["baseline"]
    assert paired["gaps"]["clp_abs_gap"] != paired["gaps"]["baseline_abs_gap"]
