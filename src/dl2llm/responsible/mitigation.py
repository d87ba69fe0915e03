"""Mitigation, measured: counterfactual data augmentation for the week 3 sentiment classifier.

Three classifiers are probed with the same counterfactual pairs and scored on the same
test sentences:

- *deployed*: the week 3 fine-tuned MiniLM as ``bert_fine_tuning`` saved it (the "before");
- *control* and *CDA*: two copies of the deployed weights, each fine-tuned for one more
  epoch with week 3's recipe (:func:`~dl2llm.classification.fine_tune`), the same seed and
  the same number of steps, on sets of the same size: the training sentences that contain
  an attribute word, some that do not, and one extra copy per attribute found, unchanged
  for the control and attribute-swapped for CDA (Lu et al., 2020; Zmigrod et al., 2019).

The only difference between control and CDA is the swap, so *CDA - control* is the effect
of the augmentation; *CDA - deployed* is the change a user of the deployed model sees.
Both differences are paired (same pairs, same test sentences) and get paired-bootstrap
intervals. They do not include the spread over fine-tuning seeds (one seed is run).
(The prompt-level mitigation for the LLM lives in :mod:`dl2llm.responsible.bbq`.)
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch

from dl2llm.classification import FineTuneConfig, classification_metrics, fine_tune, predict_proba
from dl2llm.data import LabelledTexts
from dl2llm.responsible.counterfactual import (
    SWAPS,
    CounterfactualPair,
    attribute_copies,
    groups,
    pair_scores,
    summarise,
    swap_attribute,
)
from dl2llm.responsible.fairness import gender_fairness
from dl2llm.responsible.stats import paired_difference, proportion


@dataclass(frozen=True)
class CDAConfig:
    n_with_attribute: int | None  # training sentences with an attribute word (None: all)
    n_without_attribute: int  # training sentences without one, against forgetting
    n_val: int
    config: FineTuneConfig


def positive_prob_fn(model, tokenizer, device: torch.device | str = "cpu"):
    """``texts -> p(positive)`` of shape ``(N,)`` for a sequence classifier."""
    return lambda texts: predict_proba(model, tokenizer, texts, device=device)[:, 1]


def _concat(*parts: LabelledTexts) -> LabelledTexts:
    return LabelledTexts([t for p in parts for t in p.texts], [y for p in parts for y in p.labels])


def fine_tuning_sets(
    train: LabelledTexts, n_with_attribute: int | None, n_without_attribute: int
) -> dict[str, LabelledTexts]:
    """``{"control", "cda"}``: the same sentences plus unchanged or swapped extra copies."""
    has_attribute = [any(swap_attribute(t, a) for a in SWAPS) for t in train.texts]
    split = {
        flag: LabelledTexts(
            [t for t, h in zip(train.texts, has_attribute, strict=True) if h == flag],
            [y for y, h in zip(train.labels, has_attribute, strict=True) if h == flag],
        )
        for flag in (True, False)
    }
    with_attribute = split[True].head(n_with_attribute or len(split[True]))
    base = _concat(with_attribute, split[False].head(n_without_attribute))
    originals, swapped = attribute_copies(with_attribute)
    return {"control": _concat(base, originals), "cda": _concat(base, swapped)}


def measure(model, tokenizer, test: LabelledTexts, pairs: list[CounterfactualPair]) -> dict:
    """Raw scores: ``pairs`` ``(P, 2)`` (:func:`pair_scores`), ``test`` p(positive) ``(N,)``."""
    scores = positive_prob_fn(model, tokenizer)
    return {"pairs": pair_scores(pairs, scores), "test": scores(test.texts)}


def _correct(measured: dict, test: LabelledTexts) -> np.ndarray:
    return (measured["test"] >= 0.5).astype(int) == np.asarray(test.labels)  # (N,)


def _flips(scores: np.ndarray) -> np.ndarray:
    return (scores[:, 0] >= 0.5) != (scores[:, 1] >= 0.5)  # (P,)


def _abs_gaps(scores: np.ndarray) -> np.ndarray:
    return np.abs(scores[:, 0] - scores[:, 1])  # (P,)


def summary(measured: dict, test: LabelledTexts, pairs: list, seed: int = 0) -> dict:
    """Test accuracy (95% Wilson interval), F1, and the probe statistics of one classifier."""
    correct = _correct(measured, test)
    predicted = (measured["test"] >= 0.5).astype(int)
    return {
        "test_accuracy": proportion(int(correct.sum()), len(test)),
        "f1": classification_metrics(test.labels, predicted)["f1"],
        "probes": summarise(pairs, measured["pairs"], seed),
    }


def compare(a: dict, b: dict, test: LabelledTexts, pairs: list, seed: int = 0) -> dict:
    """Paired differences ``a - b``: test accuracy, and per group abs score gap and flip rate."""
    result: dict = {"test_accuracy": paired_difference(_correct(a, test), _correct(b, test), seed)}
    gaps_a, gaps_b = _abs_gaps(a["pairs"]), _abs_gaps(b["pairs"])  # (P,) each
    flips_a, flips_b = _flips(a["pairs"]), _flips(b["pairs"])  # (P,) each
    for (source, attribute), keep in groups(pairs).items():
        result.setdefault(source, {})[attribute] = {
            "abs_score_gap": paired_difference(gaps_a[keep], gaps_b[keep], seed),
            "flip_rate": paired_difference(flips_a[keep], flips_b[keep], seed),
        }
    return result


def cda_experiment(
    deployed: tuple,
    data: dict[str, LabelledTexts],
    pairs: list[CounterfactualPair],
    settings: CDAConfig,
    seed: int = 0,
) -> dict:
    """Deployed vs control vs CDA classifier; ``deployed`` is ``(model, tokenizer)``.

    ``data`` holds the ``train``, ``val`` and ``test`` splits.
    """
    model, tokenizer = deployed
    test, val = data["test"], data["val"].head(settings.n_val)
    sets = fine_tuning_sets(data["train"], settings.n_with_attribute, settings.n_without_attribute)
    measured = {"deployed": measure(model, tokenizer, test, pairs)}
    histories = {}
    for name in ("control", "cda"):
        tuned = copy.deepcopy(model)
        torch.manual_seed(seed)  # the same dropout masks for both
        result = fine_tune(tuned, tokenizer, sets[name], val, settings.config, seed=seed, log=print)
        histories[name] = result.history
        measured[name] = measure(tuned, tokenizer, test, pairs)
    n_copies = sum(a != b for a, b in zip(sets["control"].texts, sets["cda"].texts, strict=True))
    return {
        "n_fine_tune": len(sets["cda"]),
        "n_swapped_copies": n_copies,
        "n_test": len(test),
        "fine_tune_config": asdict(settings.config),
        "histories": histories,
        "classifiers": {name: summary(m, test, pairs, seed) for name, m in measured.items()},
        "cda_vs_control": compare(measured["cda"], measured["control"], test, pairs, seed),
        "cda_vs_deployed": compare(measured["cda"], measured["deployed"], test, pairs, seed),
        "group_fairness": {
            name: gender_fairness(pairs, m["pairs"], test, seed) for name, m in measured.items()
        },
    }
