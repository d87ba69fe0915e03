"""Summarising the week 4 PEFT comparison: means over seeds, paired differences, the target.

Each method ran once per seed (:mod:`dl2llm.finetune.peft_lesson`). A method's
accuracy is its mean test accuracy over those seeds. Its difference from full
fine-tuning is *paired*: seed ``s`` of the method is compared with seed ``s`` of
full fine-tuning on the same test items, so the noise the two share (which items
are hard) cancels. The interval is a percentile bootstrap over the pooled
(seed, item) pairs (:func:`dl2llm.prompting.paired_difference_interval`); the
per-seed differences are reported beside it, so the spread between seeds is
visible too. The accuracy interval is Wilson's over the pooled test items.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dl2llm.finetune.experiment import RunResult
from dl2llm.plots import plt, save_figure
from dl2llm.prompting import paired_difference_interval, wilson_interval

TARGET_RELATIVE_SCORE, TARGET_TRAINABLE_PCT = 0.98, 2.0


def mean(values: list[float]) -> float:
    return float(np.mean(values))


def pooled_correct(runs: list[RunResult]) -> np.ndarray:
    """Every run's per-item correctness, one after the other, ``(seeds * N,)``."""
    return np.concatenate([np.asarray(run.test_correct) for run in runs])


def paired_to_full(runs: list[RunResult], full: list[RunResult]) -> dict[str, Any]:
    """Difference from full fine-tuning in accuracy points, seed by seed and pooled."""
    by_seed = {run.seed: run for run in full}
    paired = [(run, by_seed[run.seed]) for run in runs if run.seed in by_seed]
    if not paired:
        return {}
    ours, theirs = [a for a, _ in paired], [b for _, b in paired]
    diff, low, high = paired_difference_interval(pooled_correct(ours), pooled_correct(theirs))
    return {
        "minus_full_pts": round(100 * diff, 2),
        "minus_full_pts_interval": [round(100 * low, 2), round(100 * high, 2)],
        "minus_full_pts_seeds": [round(100 * (a.test_accuracy - b.test_accuracy), 2)
                                 for a, b in paired],
    }  # fmt: skip


def best_lora(runs: dict[str, list[RunResult]]) -> str | None:
    """The LoRA method under the trainable-share target best on validation (not test)."""
    lora = [
        method
        for method, results in runs.items()
        if method.startswith("lora") and results[0].trainable_pct < TARGET_TRAINABLE_PCT
    ]
    return max(lora, key=lambda m: mean([r.val_accuracy for r in runs[m]])) if lora else None


def method_metrics(runs: dict[str, list[RunResult]]) -> dict[str, Any]:
    """Each method's numbers, its paired difference from full tuning, and the LoRA target."""
    metrics: dict[str, Any] = {}
    full = runs.get("full")
    for method, results in runs.items():
        first = results[0]
        pooled = pooled_correct(results)
        low, high = wilson_interval(int(pooled.sum()), len(pooled))
        accuracy = mean([r.test_accuracy for r in results])
        numbers = {
            "accuracy": round(accuracy, 4),
            "accuracy_seeds": [round(r.test_accuracy, 4) for r in results],
            "accuracy_ci95": [round(low, 4), round(high, 4)],
            "val_accuracy": round(mean([r.val_accuracy for r in results]), 4),
            "learning_rate": first.learning_rate,
            "trainable": first.trainable,
            "trainable_pct": round(first.trainable_pct, 4),
            "stored": first.stored,
            "stored_pct": round(100 * first.stored / first.total, 4),
            "train_time_s": round(mean([r.train_time_s for r in results]), 2),
            "peak_mib": round(max(r.peak_memory_mib for r in results), 1),
        }
        if full and method != "full":
            numbers.update(paired_to_full(results, full))
        if full:
            numbers["relative_score"] = round(accuracy / mean([r.test_accuracy for r in full]), 4)
        metrics.update({f"{method}_{key}": value for key, value in numbers.items()})
    best = best_lora(runs)
    if full and best:
        met = metrics[f"{best}_relative_score"] >= TARGET_RELATIVE_SCORE
        metrics.update(best_lora=best, lora_target_met=met)
    return metrics


def comparison_table(runs: dict[str, list[RunResult]]) -> str:
    """One row per method (means over seeds), then the target verdict."""
    metrics = method_metrics(runs)
    lines = [f"\n{'method':<12} {'lr':>7} {'trainable':>10} {'share %':>8} {'val acc':>8} "
             f"{'test acc':>9} {'seeds min-max':>14} {'- full (pts) [95% interval]':>28} "
             f"{'rel.':>6} {'time s':>7} {'peak MiB':>9}"]  # fmt: skip
    for method in runs:
        m = {
            key[len(method) + 1 :]: v for key, v in metrics.items() if key.startswith(method + "_")
        }
        seeds = m["accuracy_seeds"]
        diff = "-"
        if "minus_full_pts" in m:
            low, high = m["minus_full_pts_interval"]
            diff = f"{m['minus_full_pts']:+.2f} [{low:+.2f}, {high:+.2f}]"
        lines.append(
            f"{method:<12} {m['learning_rate']:>7.0e} {m['trainable']:>10,} "
            f"{m['trainable_pct']:>8.3f} {m['val_accuracy']:>8.4f} {m['accuracy']:>9.4f} "
            f"{f'{min(seeds):.3f}-{max(seeds):.3f}':>14} {diff:>28} "
            f"{m.get('relative_score', float('nan')):>6.3f} {m['train_time_s']:>7.1f} "
            f"{m['peak_mib']:>9.1f}"
        )
    if "prefix_stored" in metrics:
        lines.append(f"prefix: {metrics['prefix_stored']:,} parameters stored after folding "
                     f"({metrics['prefix_stored_pct']:.3f}%)")  # fmt: skip
    best = metrics.get("best_lora")
    if best:
        n_test = len(runs[best][0].test_correct)
        lines.append(
            f"\ntarget: LoRA >= {TARGET_RELATIVE_SCORE:.0%} of full fine-tuning with "
            f"< {TARGET_TRAINABLE_PCT}% trainable -> {best} (best on validation): "
            f"{metrics[f'{best}_relative_score']:.3f} of full "
            f"({'met' if metrics['lora_target_met'] else 'missed'}); "
            f"{len(runs[best])} seeds x {n_test} test examples"
        )
    return "\n".join(lines)


def plot_comparison(runs: dict[str, list[RunResult]], path: Path) -> Path:
    """Test accuracy (seeds and mean) against trainable share, and first-seed losses."""
    fig, (score, curves) = plt.subplots(1, 2, figsize=(13, 4.5))
    for method, results in runs.items():
        share = results[0].trainable_pct
        accuracies = [100 * r.test_accuracy for r in results]
        dots = score.scatter([share] * len(results), accuracies, s=14, alpha=0.5)
        score.scatter(share, mean(accuracies), s=70, color=dots.get_facecolor()[0])
        score.annotate(method, (share, mean(accuracies)))
        losses = results[0].losses
        window = max(1, len(losses) // 20)
        smooth = [mean(losses[i : i + window]) for i in range(0, len(losses) - window + 1, window)]
        curves.plot([i * window for i in range(len(smooth))], smooth, label=method)
    score.set(
        xscale="log",
        xlabel="trainable parameters (% of model, log scale)",
        ylabel="test accuracy (%): seeds and mean",
        title="score vs trainable parameters",
    )
    curves.set(xlabel="step", ylabel="training loss (smoothed)", title="training loss, first seed")
    curves.legend()
    fig.tight_layout()
    return save_figure(fig, path, dpi=110, bbox_inches=None)
