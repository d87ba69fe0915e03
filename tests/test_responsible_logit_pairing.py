"""Counterfactual logit pairing on a tiny BERT: the penalty closes the counterfactual gap."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import tiny_bert_fine_tune

from dl2llm import models
from dl2llm.classification import FineTuneConfig, predict_proba
from dl2llm.data import LabelledTexts
from dl2llm.responsible.logit_pairing import clp_fine_tune, pairing_gap

GOOD = ["good", "great", "wonderful", "superb", "lovely", "excellent", "fine", "brilliant"]
BAD = ["bad", "awful", "terrible", "dreadful", "poor", "boring", "dull", "horrible"]
CONFIG = FineTuneConfig(epochs=16, batch_size=4, learning_rate=5e-3, max_length=16)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(models.encoder_path())


def data() -> tuple[LabelledTexts, tuple[list[str], list[str]]]:
    # "he" only in good reviews, "she" only in bad ones: a shortcut the labels reward
    texts = [f"he saw a {w} movie" for w in GOOD] + [f"she saw a {w} movie" for w in BAD]
    train = LabelledTexts(texts, [1] * len(GOOD) + [0] * len(BAD))
    swapped = [t.replace("she", "@").replace("he", "she").replace("@", "he") for t in texts]
    return train, (texts, swapped)


def test_the_pairing_penalty_shrinks_the_counterfactual_gap(tokenizer):
    train, pairs = data()
    gaps = {}
    for weight in (0.0, 5.0):
        model = tiny_bert_fine_tune(seed=0)
        history = clp_fine_tune(model, tokenizer, train, pairs, CONFIG, weight, seed=0)
        assert len(history) == CONFIG.epochs and history[-1]["ce"] < 0.5 * history[0]["ce"]
        with torch.no_grad():
            gaps[weight] = pairing_gap(model, tokenizer, *pairs, CONFIG.max_length).item()
        probs = predict_proba(model, tokenizer, train.texts, CONFIG.max_length)
        assert (probs.argmax(1) == np.array(train.labels)).mean() == 1.0
    # plain fine-tuning leans on "he"/"she" too; the penalty removes that
    assert gaps[0.0] > 0.5 and gaps[5.0] < gaps[0.0] / 10
