"""Mitigation, measured: counterfactual data augmentation for the sentiment classifier.

Two classifiers are fine-tuned from the same MiniLM checkpoint with the same recipe,
seed and steps-per-example (week 3's :func:`~dl2llm.classification.fine_tune`): one on
the training texts, one on the training texts plus their attribute-swapped copies
(:func:`~dl2llm.responsible.counterfactual.augment`). Both are then probed with the same
counterfactual pairs and scored on the same test split, so the change in flip rate, score
gap and accuracy is the effect of the augmentation alone. (The prompt-level mitigation for
the LLM lives in :mod:`dl2llm.responsible.bbq`.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dl2llm.classification import (
    FineTuneConfig,
    classification_metrics,
    fine_tune,
    load_base_classifier,
    predict_proba,
)
from dl2llm.data import LabelledTexts
from dl2llm.responsible.counterfactual import CounterfactualPair, augment, probe
from dl2llm.responsible.stats import proportion


@dataclass(frozen=True)
class CdaSettings:
    train_size: int
    test_size: int
    config: FineTuneConfig


def positive_prob_fn(model, tokenizer, device: torch.device | str = "cpu"):
    """``texts -> p(positive)`` of shape ``(N,)`` for a sequence classifier."""
    return lambda texts: predict_proba(model, tokenizer, texts, device=device)[:, 1]


def evaluate_classifier(model, tokenizer, test: LabelledTexts, pairs, seed: int = 0) -> dict:
    """Test accuracy (with a 95% Wilson interval) and the counterfactual probe results."""
    scores = positive_prob_fn(model, tokenizer)
    predicted = (scores(test.texts) >= 0.5).astype(int)
    correct = int((predicted == np.asarray(test.labels)).sum())
    return {
        "test_accuracy": proportion(correct, len(test)),
        "f1": classification_metrics(test.labels, predicted)["f1"],
        "probes": probe(pairs, scores, seed),
    }


def train_classifier(train: LabelledTexts, val: LabelledTexts, config: FineTuneConfig, seed: int):
    """A MiniLM sentiment classifier fine-tuned on ``train`` (seeded)."""
    torch.manual_seed(seed)
    model, tokenizer = load_base_classifier()
    fine_tune(model, tokenizer, train, val, config, seed=seed, log=lambda _: None)
    return model, tokenizer


def cda_experiment(
    splits: dict[str, LabelledTexts],
    pairs: list[CounterfactualPair],
    settings: CdaSettings,
    seed: int = 0,
) -> dict:
    """Baseline vs CDA classifier: accuracy, flip rate and score gap before and after."""
    train = splits["train"].head(settings.train_size)
    val = splits["val"].head(max(settings.test_size // 2, 16))
    test = splits["test"].head(settings.test_size)
    augmented = augment(train)
    result = {"n_train": len(train), "n_train_augmented": len(augmented), "n_test": len(test)}
    for name, data in (("before", train), ("after", augmented)):
        model, tokenizer = train_classifier(data, val, settings.config, seed)
        result[name] = evaluate_classifier(model, tokenizer, test, pairs, seed)
    before, after = result["before"], result["after"]
    result["accuracy_change_points"] = 100 * (
        after["test_accuracy"]["value"] - before["test_accuracy"]["value"]
    )
    result["abs_gap_before"] = before["probes"]["template"]["all"]["abs_score_gap"]["value"]
    result["abs_gap_after"] = after["probes"]["template"]["all"]["abs_score_gap"]["value"]
    return result
