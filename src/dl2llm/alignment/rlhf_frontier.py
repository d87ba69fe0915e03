"""Comparing RLHF methods fairly: the KL-reward frontier, at a matched KL, over seeds.

A method that moves the policy further from the reference usually gets more
reward, so "method A beats method B" means nothing unless both spent the same
KL "budget" (Gao et al., 2023, "Scaling laws for reward model
overoptimization"; Rafailov et al., 2023, Fig. 2). Sweeping each method's
strength (PPO's ``kl_coef``, DPO's ``beta``, best-of-N's ``N``) traces a
*frontier*: mean true reward against KL. :func:`reward_at_kl` reads a frontier
at a common KL by linear interpolation between measured points (the reference
itself is the point ``(0, reference reward)``); one number per seed becomes a mean
with a Student-t 95% interval (:func:`dl2llm.prompting.seed_interval`).
"""

from __future__ import annotations

import numpy as np

from dl2llm.plots import plt, save_figure


def reward_at_kl(kls: list[float], rewards: list[float], kl: float) -> float:
    """Linear interpolation of a frontier at ``kl`` (points sorted by KL; clamped at the ends).

    >>> reward_at_kl([0.0, 2.0, 4.0], [0.5, 0.7, 0.8], 1.0)
    0.6
    >>> reward_at_kl([0.0, 2.0], [0.5, 0.7], 3.0)
    0.7
    """
    order = np.argsort(kls)
    return round(float(np.interp(kl, np.asarray(kls)[order], np.asarray(rewards)[order])), 12)


def matched_kl(frontiers: dict[str, list[list[float]]]) -> float:
    """The largest KL every method's frontier reaches in every seed (no extrapolation).

    ``frontiers[method]`` holds, per seed, the KLs of its runs.

    >>> matched_kl({"ppo": [[0.5, 3.0], [0.4, 2.0]], "dpo": [[1.0, 2.5], [0.2, 4.0]]})
    2.0
    """
    return min(max(kls) for runs in frontiers.values() for kls in runs)


def plot_frontier(
    runs: dict[str, dict[float, list[dict]]],
    best_of: list[dict],
    reference: float,
    kl: float,
    path,
):
    """True reward (left) and reward-model score (right) against KL for every method.

    ``runs[method][coef]`` lists one result per seed; ``best_of`` one point per N
    (seed means). Each method's points are seed means with the seed spread as bars.
    """
    fig, (true_ax, rm_ax) = plt.subplots(1, 2, figsize=(12, 4.6))
    for method, by_coef in runs.items():
        coefs = sorted(by_coef)
        for ax, key in ((true_ax, "true_reward"), (rm_ax, "reward_model")):
            xs = [np.mean([r["kl"] for r in by_coef[c]]) for c in coefs]
            ys = [np.mean([r[key] for r in by_coef[c]]) for c in coefs]
            err = [np.std([r[key] for r in by_coef[c]]) for c in coefs]
            ax.errorbar(xs, ys, yerr=err, fmt="o-", capsize=3, label=method)
            for x, y, c in zip(xs, ys, coefs, strict=True):
                ax.annotate(f"{c:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    for ax, key in ((true_ax, "true_reward"), (rm_ax, "reward_model")):
        ax.plot([p["kl"] for p in best_of], [p[key] for p in best_of], "s--", label="best-of-N")
        ax.axvline(kl, color="grey", ls=":", label=f"matched KL {kl:.2f}")
        ax.set(xlabel="KL(policy || reference), nats per answer")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    true_ax.axhline(reference, color="grey", ls="--")
    true_ax.set(title="true reward (asked-for polarity) vs KL", ylabel="mean true reward")
    rm_ax.set(title="reward-model score vs KL (over-optimisation)", ylabel="reward-model score")
    return save_figure(fig, path)
