"""Group fairness of the sentiment classifier: accuracy and error rates per gender.

Group fairness compares a classifier's error rates across groups of people (Hardt et al.,
2016, "Equality of Opportunity in Supervised Learning": equal false negative rates;
*equalized odds*: equal false positive and false negative rates). We compute the rates
per group with fairlearn's ``MetricFrame`` (Bird et al., 2020) and report its
``difference()``: the largest gap between two groups.

Which labels are honest here? The counterfactual templates have no sentiment label, so
they cannot give an error rate; BBQ's labels belong to an LLM's answers, not to the
classifier. The labelled sentences are the movie-review test set. We take its sentences
that mention exactly one gender (gendered words of
:data:`~dl2llm.responsible.counterfactual.SWAPS`), and their gender-swapped twins (the
real counterfactual pairs the audit already scores), which keep the human label. Each
sentence then appears once as "female" and once as "male", so the two groups hold the
same reviews and differ only in the gendered words: a gap in accuracy is caused by those
words, not by what women and men are written about. (Group sizes are equal by
construction; they are small, so each gap carries a 95% bootstrap interval over the
sentence pairs.) The swaps share the limits of
:data:`~dl2llm.responsible.benchmarks.LIMITATIONS` ``["counterfactual"]``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
from fairlearn.metrics import (
    MetricFrame,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
)
from sklearn.metrics import accuracy_score

from dl2llm.data import LabelledTexts
from dl2llm.responsible.counterfactual import SWAPS, CounterfactualPair

METRICS = {
    "accuracy": accuracy_score,
    "false_positive_rate": false_positive_rate,
    "false_negative_rate": false_negative_rate,
    "selection_rate": selection_rate,  # share predicted positive
}
MALE_WORDS = frozenset(word.lower() for word in SWAPS["pronoun"])
FEMALE_WORDS = frozenset({*(word.lower() for word in SWAPS["pronoun"].values()), "hers"})


def gender_of(text: str) -> str | None:
    """``"female"`` or ``"male"`` if ``text`` has gendered words of one gender only, else None.

    >>> gender_of("Her husband left."), gender_of("She thanks the girls."), gender_of("A film.")
    (None, 'female', None)
    """
    words = set(re.findall(r"[a-z]+", text.lower()))
    male, female = bool(words & MALE_WORDS), bool(words & FEMALE_WORDS)
    if male == female:
        return None
    return "male" if male else "female"


def group_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], groups: Sequence[str]
) -> dict[str, dict]:
    """Per-group accuracy, false positive/negative and selection rates, and their max gaps.

    Returns ``{"by_group": {metric: {group: rate}}, "difference": {metric: gap},
    "n_by_group": {group: n}}``; ``difference`` is ``MetricFrame.difference()``, the
    largest minus the smallest group value.
    """
    frame = MetricFrame(
        metrics=METRICS,
        y_true=np.asarray(y_true),
        y_pred=np.asarray(y_pred),
        sensitive_features={"group": np.asarray(groups)},
    )
    by_group = frame.by_group  # DataFrame: (groups, metrics)
    return {
        "by_group": {m: {str(g): float(v) for g, v in by_group[m].items()} for m in METRICS},
        "difference": {m: float(v) for m, v in frame.difference().items()},
        "n_by_group": dict(sorted(Counter(map(str, groups)).items())),
    }


def accuracy_by_group(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    groups: Sequence[str],
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict:
    """Accuracy per group (``MetricFrame``; any number of classes), its largest gap, and a
    95% bootstrap interval of the gap (items resampled within each group, as the groups
    are independent samples).
    """
    y_true, y_pred, groups = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
    frame = MetricFrame(  # a named feature: a bare array of one item reads as 2-D
        metrics=accuracy_score, y_true=y_true, y_pred=y_pred, sensitive_features={"group": groups}
    )
    correct = (y_true == y_pred).astype(float)  # (N,)
    rng = np.random.default_rng(seed)
    boot = np.stack(
        [
            rng.choice(correct[groups == g], (n_resamples, int((groups == g).sum()))).mean(1)
            for g in np.unique(groups)
        ]
    )  # (G, R)
    low, high = np.percentile(boot.max(0) - boot.min(0), [2.5, 97.5])
    gap = float(frame.difference())
    return {
        "by_group": {str(g): float(v) for g, v in frame.by_group.items()},
        "n_by_group": dict(sorted(Counter(map(str, groups)).items())),
        "difference": gap,
        "difference_interval": {"mean": gap, "low": float(low), "high": float(high),
                                "n": len(groups)},
    }  # fmt: skip


def _rates(y: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """Rates over the last axis of ``y``, ``pred`` ``(R, N)`` -> ``(R,)`` each (nan: no cases)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "accuracy": (y == pred).mean(-1),
            "false_positive_rate": ((pred == 1) & (y == 0)).sum(-1) / (y == 0).sum(-1),
            "false_negative_rate": ((pred == 0) & (y == 1)).sum(-1) / (y == 1).sum(-1),
            "selection_rate": (pred == 1).mean(-1),
        }


def paired_gap_intervals(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, dict]:
    """``|rate(a) - rate(b)|`` per metric, with a 95% bootstrap interval over the pairs.

    Row ``i`` of ``pred_a`` and ``pred_b`` ``(N,)`` is the same sentence in groups a and b
    (label ``y_true[i]``); resampling rows keeps the pairs together. Interval dicts
    ``{"mean", "low", "high", "n"}`` (``mean`` is the gap on all pairs).
    """
    y, a, b = (np.asarray(x, dtype=int) for x in (y_true, pred_a, pred_b))
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(y), size=(n_resamples, len(y)))  # (R, N)
    point_a, point_b = _rates(y[None], a[None]), _rates(y[None], b[None])  # (1,) each
    boot_a, boot_b = _rates(y[rows], a[rows]), _rates(y[rows], b[rows])  # (R,) each
    result = {}
    for metric in METRICS:
        gaps = np.abs(boot_a[metric] - boot_b[metric])  # (R,)
        low, high = np.nanpercentile(gaps, [2.5, 97.5])
        gap = abs(float(point_a[metric][0] - point_b[metric][0]))
        result[metric] = {"mean": gap, "low": float(low), "high": float(high), "n": len(y)}
    return result


def gender_fairness(
    pairs: Sequence[CounterfactualPair], scores: np.ndarray, test: LabelledTexts, seed: int = 0
) -> dict:
    """Group fairness by gender on the real gender-swapped test sentences (module docstring).

    ``scores`` ``(P, 2)``: ``p(positive)`` of each pair's original and swapped sentence
    (:func:`~dl2llm.responsible.counterfactual.pair_scores`); ``test`` gives the labels.
    """
    label_of = dict(zip(test.texts, test.labels, strict=True))
    female, male, labels = [], [], []
    for pair, (p_original, p_swapped) in zip(pairs, scores, strict=True):
        gender = gender_of(pair.original)
        if pair.source != "real" or pair.attribute != "pronoun" or gender is None:
            continue
        first, second = (p_original, p_swapped) if gender == "female" else (p_swapped, p_original)
        female.append(int(first >= 0.5))
        male.append(int(second >= 0.5))
        labels.append(label_of[pair.original])
    if not labels:
        return {"n_pairs": 0}
    groups = ["female"] * len(labels) + ["male"] * len(labels)
    return {
        "n_pairs": len(labels),
        **group_metrics(labels + labels, female + male, groups),
        "gap_intervals": paired_gap_intervals(np.array(labels), np.array(female), np.array(male)),
    }
