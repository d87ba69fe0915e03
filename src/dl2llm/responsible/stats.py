"""Intervals for the audit: Wilson for proportions, percentile bootstrap for means and
paired differences."""

from __future__ import annotations

import numpy as np

from dl2llm.prompting import wilson_interval


def proportion(successes: int, n: int) -> dict[str, float]:
    """A proportion with its 95% Wilson interval (``nan`` when ``n`` is 0)."""
    if n == 0:
        return {"value": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
    low, high = wilson_interval(successes, n)
    return {"value": successes / n, "low": low, "high": high, "n": n}


def bootstrap_mean(values: np.ndarray, n_resamples: int = 2000, seed: int = 0) -> dict:
    """The mean of ``values`` with a 95% percentile-bootstrap interval."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return {"value": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
    rng = np.random.default_rng(seed)
    resamples = rng.choice(values, size=(n_resamples, len(values)), replace=True)  # (R, N)
    low, high = np.percentile(resamples.mean(axis=1), [2.5, 97.5])
    return {"value": float(values.mean()), "low": float(low), "high": float(high), "n": len(values)}


def paired_difference(a: np.ndarray, b: np.ndarray, seed: int = 0) -> dict:
    """Mean of ``a - b`` over the same items, with a 95% paired-bootstrap interval.

    Resampling items (not ``a`` and ``b`` separately) keeps what the two measurements share
    out of the interval, so a small change measured on the same pairs can be told from 0.
    """
    return bootstrap_mean(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), seed=seed)


def as_interval(estimate: dict) -> dict[str, float]:
    """``{"value", "low", "high", "n"}`` as the project's interval ``{"mean", "low", "high", "n"}``.

    >>> as_interval({"value": 0.5, "low": 0.2, "high": 0.8, "n": 10})
    {'mean': 0.5, 'low': 0.2, 'high': 0.8, 'n': 10}
    """
    return {"mean": estimate["value"], "low": estimate["low"], "high": estimate["high"],
            "n": estimate["n"]}  # fmt: skip


def seed_item_bootstrap(values: np.ndarray, n_resamples: int = 2000, seed: int = 0) -> dict:
    """Mean of a ``(S, N)`` array (seeds x paired items) with a 95% two-level bootstrap
    interval ``{"mean", "low", "high", "n"}``.

    Each resample draws ``S`` seeds and ``N`` items with replacement (the same items for
    every seed: they are paired), so the interval holds both the spread over fine-tuning
    seeds and over probe items. With one seed it is the paired bootstrap over items.

    >>> seed_item_bootstrap(np.array([[0.5, 0.5], [0.5, 0.5]]))
    {'mean': 0.5, 'low': 0.5, 'high': 0.5, 'n': 2}
    """
    values = np.asarray(values, dtype=float)  # (S, N)
    rng = np.random.default_rng(seed)
    n_seeds, n_items = values.shape
    seeds = rng.integers(0, n_seeds, (n_resamples, n_seeds))  # (R, S)
    items = rng.integers(0, n_items, (n_resamples, n_items))  # (R, N)
    means = np.array([values[np.ix_(s, i)].mean() for s, i in zip(seeds, items, strict=True)])
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(values.mean()), "low": float(low), "high": float(high), "n": n_items}
