"""The week 5 RLHF lesson behind ``weeks/week5_alignment_deployment/rl_hf_demo.py``.

:func:`run_lesson` labels preference pairs with the chosen labeler, runs
:func:`~dl2llm.alignment.rlhf.run_rlhf` (reward model, PPO, DPO) on the
project's GPT-2, and turns its :class:`~dl2llm.alignment.rlhf.RLHFReport` into
the deliverable's metrics and training plot. :func:`apply_overrides` and
:func:`choose_labeler` carry the command-line choices into the configuration.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from dl2llm.alignment.preferences import Labeler, LexiconLabeler, SentimentLabeler
from dl2llm.alignment.rlhf import RLHFConfig, RLHFReport, run_rlhf
from dl2llm.errors import UsageError
from dl2llm.models import load_gpt2_tokenizer
from dl2llm.plots import plt, save_figure
from dl2llm.pretrain import load_project_gpt2

NAME = "rl_hf_demo"


def apply_overrides(
    settings: RLHFConfig,
    *,
    ppo_iterations: int | None = None,
    kl_coef: float | None = None,
    dpo_steps: int | None = None,
    beta: float | None = None,
) -> RLHFConfig:
    """``settings`` with the optional command-line overrides (``None``: keep) applied.

    Raises :class:`~dl2llm.errors.UsageError` for a negative KL coefficient or a beta <= 0.
    """
    if kl_coef is not None and kl_coef < 0:
        raise UsageError(f"--kl-coef must be >= 0, got {kl_coef}")
    if beta is not None and beta <= 0:
        raise UsageError(f"--beta must be > 0, got {beta}")
    ppo, dpo = settings.ppo, settings.dpo
    if ppo_iterations is not None:
        ppo = replace(ppo, iterations=ppo_iterations)
    if kl_coef is not None:
        ppo = replace(ppo, kl_coef=kl_coef)
    if dpo_steps is not None:
        dpo = replace(dpo, steps=dpo_steps)
    if beta is not None:
        dpo = replace(dpo, beta=beta)
    return replace(settings, ppo=ppo, dpo=dpo)


def choose_labeler(name: str, quick: bool) -> str:
    """``"sentiment"`` or ``"lexicon"``; ``"auto"`` is the word list in quick mode."""
    if name != "auto":
        return name
    return "lexicon" if quick else "sentiment"


def collect_metrics(report: RLHFReport) -> dict[str, Any]:
    """The deliverable's metrics: reward model accuracy, and per method score, KL, win rate."""
    metrics: dict[str, Any] = {
        "preference_pairs": len(report.pairs),
        "label_agreement": report.pairs.noise_free.float().mean().item(),
        "reward_model_train_accuracy": report.reward.train_accuracy,
        "reward_model_heldout_accuracy": report.reward.heldout_accuracy,
        "reward_model_noise_free_accuracy": report.reward_noise_free_accuracy,
        "reward_model_best_epoch": report.reward.best_epoch,
        "reference_score": report.reference_gold,
    }
    for name, method in (("ppo", report.ppo), ("dpo", report.dpo)):
        metrics[f"{name}_final_score"] = method.gold[-1]
        metrics[f"{name}_final_reward_model_score"] = method.reward_model[-1]
        metrics[f"{name}_final_kl"] = method.kl[-1]
        metrics[f"{name}_win_rate"] = method.win["win_rate"]
        metrics[f"{name}_win_rate_low"] = method.win["low"]
        metrics[f"{name}_win_rate_high"] = method.win["high"]
        metrics[f"{name}_win_rate_by_reward_model"] = method.win_by_reward_model["win_rate"]
        metrics[f"{name}_curve"] = {"share": method.fraction, "score": method.gold, "kl": method.kl}
    return metrics


def plot_training(report: RLHFReport, path: str | Path) -> Path:
    """Labeler score and KL to the reference against the share of training done."""
    fig, (reward_ax, kl_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, method in (("PPO", report.ppo), ("DPO", report.dpo)):
        reward_ax.plot(method.fraction, method.gold, "o-", label=label)
        kl_ax.plot(method.fraction, method.kl, "o-", label=label)
    reward_ax.axhline(report.reference_gold, color="grey", ls="--", label="reference")
    reward_ax.set(title="labeler score of sampled continuations", xlabel="share of training")
    kl_ax.set(title="KL(policy || reference), nats per continuation", xlabel="share of training")
    for ax in (reward_ax, kl_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path)


def run_lesson(
    settings: RLHFConfig, labeler_name: str, quick: bool, seed: int, out_dir: str | Path
) -> tuple[dict[str, Any], list[str]]:
    """Run RLHF and DPO on the project's GPT-2 (on the CPU, one thread); write the plot.

    ``labeler_name``: ``"lexicon"`` (word list) or ``"sentiment"`` (the week 3 classifier).
    Returns the metrics of :func:`collect_metrics` and the artifact names (the plot).
    """
    torch.set_num_threads(1)  # tiny models and sampling: the demo runs on one CPU thread
    labeler: Labeler = LexiconLabeler() if labeler_name == "lexicon" else SentimentLabeler(quick)
    base = load_project_gpt2(quick)
    report, _ = run_rlhf(base, labeler, load_gpt2_tokenizer(), settings, seed, not quick)
    plot_name = f"{NAME}_training.png"
    plot_training(report, Path(out_dir) / plot_name)
    return collect_metrics(report), [plot_name]
