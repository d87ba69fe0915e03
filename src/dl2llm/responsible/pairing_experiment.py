"""Counterfactual logit pairing against a controlled baseline, probed on held-out names.

Does the pairing penalty of :mod:`~.logit_pairing` (Garg et al., 2019, "Counterfactual
Fairness in Text Classification via Robustness") make the sentiment classifier's score
ignore a protected attribute in sentences it never trained on? The design:

- **Split** (:func:`split_probes`): the 24 probe templates, and each attribute's fillers
  (name pairs, gendered phrases, nationalities, religions), are split into a training half
  and a probe half. The pairing term trains on training-half templates filled with
  training-half fillers and on real training sentences with an attribute word (less those
  that mention a probe-half name); the gap is measured on probe-half templates filled with
  probe-half fillers only.
- **Arms**: two copies of the deployed week 3 classifier are fine-tuned for the same steps
  on the same labelled sentences and pairs, in the same order, with the same dropout masks
  (same seed): the *baseline* with pairing weight 0, *CLP* with weight lambda. The pairing
  forward passes run in both arms (weight 0 only removes their gradient), so the weight is
  the only difference. Every seed of ``PairingConfig.seeds`` runs both arms.
- **Gaps**: on probe pair i, ``d_i = p(positive | original) - p(positive | swapped)``. The
  *signed* gap (mean of ``d``) says which side the classifier favours; the *absolute* gap
  (mean of ``|d|``) how far the score moves at all. The reduction ``|d_base| - |d_clp|``
  and the test-accuracy change are paired per item and seed, with a two-level bootstrap
  over seeds and items (:func:`~.stats.seed_item_bootstrap`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from dl2llm.classification import FineTuneConfig
from dl2llm.data import LabelledTexts
from dl2llm.responsible.counterfactual import (
    SWAPS,
    TEMPLATE_FILLERS,
    TEMPLATES,
    CounterfactualPair,
    attribute_copies,
    fill_templates,
    pair_scores,
)
from dl2llm.responsible.logit_pairing import clp_fine_tune
from dl2llm.responsible.mitigation import positive_prob_fn
from dl2llm.responsible.stats import seed_item_bootstrap


@dataclass(frozen=True)
class PairingConfig:
    """The CLP experiment's sizes: defaults are the full run, ``quick()`` is for CI."""

    weight: float = 1.0  # lambda, on the margin logit_pos - logit_neg
    seeds: tuple[int, ...] = (0, 1, 2)
    n_train: int = 960  # labelled sentences per arm: n_train / batch_size steps
    n_probe_templates: int | None = None  # probe-half templates used (None: all)
    fine_tune: FineTuneConfig = FineTuneConfig(
        epochs=1, batch_size=16, learning_rate=5e-5, max_length=48
    )

    @classmethod
    def quick(cls) -> PairingConfig:
        return cls(
            seeds=(0,),
            n_train=16,
            n_probe_templates=1,
            fine_tune=FineTuneConfig(epochs=1, batch_size=8, max_length=32),
        )


@dataclass(frozen=True)
class ProbeSplit:
    """Templates and fillers, each split into a training half and a probe half."""

    train_templates: tuple[str, ...]
    probe_templates: tuple[str, ...]
    train_fillers: dict[str, tuple[str, ...]]
    probe_fillers: dict[str, tuple[str, ...]]

    def probe_names(self) -> frozenset[str]:
        """The probe half's names, and the names they are swapped with."""
        names = self.probe_fillers["name"]
        return frozenset(names) | {SWAPS["name"][name] for name in names}


def split_probes(
    templates: Sequence[str] = TEMPLATES,
    fillers: dict[str, Sequence[str]] = TEMPLATE_FILLERS,
) -> ProbeSplit:
    """Even-numbered templates and fillers train, odd-numbered ones probe.

    A name filler stands for its pair (``Adam`` for Adam/Jamal), so a pair falls on one side.

    >>> split = split_probes()
    >>> len(split.train_templates), len(split.probe_templates)
    (12, 12)
    >>> split.train_fillers["name"][:2], split.probe_fillers["name"][:2]
    (('Adam', 'Josh'), ('Harry', 'Roger'))
    """
    return ProbeSplit(
        tuple(templates[::2]),
        tuple(templates[1::2]),
        {attribute: tuple(words[::2]) for attribute, words in fillers.items()},
        {attribute: tuple(words[1::2]) for attribute, words in fillers.items()},
    )


def training_pairs(
    split: ProbeSplit, train: LabelledTexts, seed: int = 0
) -> tuple[list[str], list[str]]:
    """``(originals, swapped)`` for the pairing term, shuffled with ``seed``.

    Training-half templates with training-half fillers, and the real training sentences
    with an attribute word (one pair per attribute found), less any that mention a probe
    name on either side.
    """
    names = sorted(split.probe_names(), key=len, reverse=True)
    probe_name = re.compile(rf"\b({'|'.join(names)})\b")
    templated = fill_templates(split.train_templates, split.train_fillers)
    originals, swapped = attribute_copies(train)
    pairs = [(p.original, p.swapped) for p in templated] + [
        (a, b)
        for a, b in zip(originals.texts, swapped.texts, strict=True)
        if not (probe_name.search(a) or probe_name.search(b))
    ]
    order = np.random.default_rng(seed).permutation(len(pairs))
    return [pairs[i][0] for i in order], [pairs[i][1] for i in order]


def fine_tune_arm(
    deployed: tuple,
    train: LabelledTexts,
    pairs: tuple[list[str], list[str]],
    config: PairingConfig,
    weight: float,
    seed: int,
):
    """A copy of the deployed ``(model, tokenizer)``'s model fine-tuned with CLP at ``weight``.

    ``torch.manual_seed(seed)`` first, so that both arms draw the same dropout masks.
    Returns the tuned model and its per-epoch history.
    """
    model, tokenizer = deployed
    tuned = copy.deepcopy(model)
    torch.manual_seed(seed)
    history = clp_fine_tune(tuned, tokenizer, train, pairs, config.fine_tune, weight, seed)
    return tuned, history


def measure(model, tokenizer, probe: list[CounterfactualPair], test: LabelledTexts) -> dict:
    """Probe scores ``(P, 2)`` and whether each test sentence is classified right ``(N,)``."""
    scores = positive_prob_fn(model, tokenizer)
    correct = (scores(test.texts) >= 0.5).astype(int) == np.asarray(test.labels)  # (N,)
    return {"probe": pair_scores(probe, scores), "correct": correct}


def gap_metrics(baseline: np.ndarray, clp: np.ndarray, seed: int = 0) -> dict:
    """Signed and absolute gaps of both arms' probe scores ``(S, P, 2)``, and the reduction.

    ``abs_gap_reduction`` is ``|d_base| - |d_clp|`` per seed and pair (positive: CLP
    shrank the gap), with a two-level bootstrap interval over seeds and pairs.
    """
    d_base = baseline[..., 0] - baseline[..., 1]  # (S, P)
    d_clp = clp[..., 0] - clp[..., 1]  # (S, P)
    reduction = np.abs(d_base) - np.abs(d_clp)  # (S, P)
    base_abs, clp_abs = float(np.abs(d_base).mean()), float(np.abs(d_clp).mean())
    return {
        "baseline_signed_gap": float(d_base.mean()),
        "clp_signed_gap": float(d_clp.mean()),
        "baseline_abs_gap": base_abs,
        "clp_abs_gap": clp_abs,
        "abs_gap_reduction": seed_item_bootstrap(reduction, seed=seed),
        "abs_gap_reduction_by_seed": reduction.mean(axis=1).tolist(),
        "relative_abs_gap_reduction": 1 - clp_abs / base_abs if base_abs > 0 else float("nan"),
    }


def accuracy_change(baseline: np.ndarray, clp: np.ndarray, seed: int = 0) -> dict:
    """CLP - baseline test accuracy in points, from right/wrong arrays ``(S, N)``."""
    change = 100 * (np.asarray(clp, dtype=float) - np.asarray(baseline, dtype=float))  # (S, N)
    return seed_item_bootstrap(change, seed=seed) | {
        "by_seed": change.mean(axis=1).tolist(),
        "baseline_accuracy": float(np.mean(baseline)),
        "clp_accuracy": float(np.mean(clp)),
    }


def pairing_experiment(
    deployed: tuple,
    data: dict[str, LabelledTexts],
    config: PairingConfig,
    log: Callable[[str], None] = print,
) -> dict:
    """Baseline vs CLP arms for every seed; ``deployed`` is ``(model, tokenizer)``.

    ``data`` holds the ``train`` and ``test`` splits. Returns the split's sizes, both
    arms' gaps (overall and per attribute), the accuracy change and each run's history.
    """
    model, tokenizer = deployed
    split = split_probes()
    probe = fill_templates(split.probe_templates[: config.n_probe_templates], split.probe_fillers)
    train, test = data["train"].head(config.n_train), data["test"]
    before = measure(model, tokenizer, probe, test)
    runs: dict[str, list[dict]] = {"baseline": [], "clp": []}
    for seed in config.seeds:
        pairs = training_pairs(split, data["train"], seed)
        for arm, weight in (("baseline", 0.0), ("clp", config.weight)):
            tuned, history = fine_tune_arm(deployed, train, pairs, config, weight, seed)
            runs[arm].append(measure(tuned, tokenizer, probe, test) | {"history": history})
            log(f"CLP seed {seed}, {arm} (weight {weight}): {history[-1]}")
    scores = {arm: np.stack([r["probe"] for r in runs[arm]]) for arm in runs}  # (S, P, 2)
    attributes = np.array([p.attribute for p in probe])
    deployed_gap = before["probe"][:, 0] - before["probe"][:, 1]  # (P,)
    return {
        "config": asdict(config),
        "n_training_pairs": len(pairs[0]),
        "n_probe_pairs": len(probe),
        "probe_names": sorted(split.probe_names()),
        "deployed_abs_gap": float(np.abs(deployed_gap).mean()),
        "deployed_accuracy": float(before["correct"].mean()),
        "gaps": gap_metrics(scores["baseline"], scores["clp"]),
        "by_attribute": {
            attribute: gap_metrics(
                scores["baseline"][:, attributes == attribute],
                scores["clp"][:, attributes == attribute],
            )
            for attribute in sorted(set(attributes))
        },
        "accuracy_change_pts": accuracy_change(
            np.stack([r["correct"] for r in runs["baseline"]]),
            np.stack([r["correct"] for r in runs["clp"]]),
        ),
        "histories": {arm: [r["history"] for r in runs[arm]] for arm in runs},
    }


def pairing_headline(result: dict) -> dict[str, float | dict]:
    """The CLP experiment's headline numbers (flat keys)."""
    gaps, accuracy = result["gaps"], result["accuracy_change_pts"]
    reduction = gaps["abs_gap_reduction"]
    return {
        "deployed_probe_abs_gap": result["deployed_abs_gap"],
        "baseline_abs_gap": gaps["baseline_abs_gap"],
        "baseline_signed_gap": gaps["baseline_signed_gap"],
        "clp_abs_gap_after": gaps["clp_abs_gap"],
        "clp_signed_gap_after": gaps["clp_signed_gap"],
        "clp_abs_gap_reduction": reduction["mean"],
        "clp_abs_gap_reduction_interval": reduction,
        "clp_abs_gap_reduction_low": reduction["low"],
        "clp_relative_abs_gap_reduction": gaps["relative_abs_gap_reduction"],
        "clp_accuracy_change_pts": accuracy["mean"],
        "clp_accuracy_change_pts_interval": {k: accuracy[k] for k in ("mean", "low", "high", "n")},
        "clp_accuracy_loss_pts": -accuracy["mean"],
    }
