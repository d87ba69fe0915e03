"""What ``weeks/week4_optimization/parameter_efficient_tuning.py`` runs: PEFT against full tuning.

The project's GPT-2 (or any local GPT-2 folder) is fine-tuned for sentiment once per
method of :mod:`dl2llm.finetune.experiment` (full, ``lora_r{r}``, adapters, prefix),
each from the same pretrained weights and the same seed. :func:`run_lesson`

1. encodes the train/validation/test snippets (:func:`load_task`);
2. trains every method, recording each finished one in a progress file so that a
   killed run resumes after the last finished method (:func:`compare_methods`);
3. measures each method against full fine-tuning (:func:`method_metrics`) and checks
   the target: LoRA reaches >= 98% of full fine-tuning's test accuracy with < 2% of
   the parameters trainable;
4. plots score against trainable share and the loss curves (:func:`plot_comparison`);
5. runs our LoRA on SmolLM2 as causal-LM fine-tuning and saves the adapter alone
   (:func:`smollm2_lora`).

:class:`PeftLesson` holds what came out; its :meth:`~PeftLesson.report` is the printed table.
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers.utils import logging as hf_logging

from dl2llm.data import lm_splits, sentiment_splits
from dl2llm.finetune import save_lora
from dl2llm.finetune.experiment import (
    LanguageModelResult,
    MethodResult,
    PeftFineTuneConfig,
    accuracy_interval,
    encode,
    fine_tune,
    lm_windows,
    load_classifier,
    load_progress,
    load_tokenizer,
    lora_language_model,
    parse_method,
    prepare,
    save_progress,
)
from dl2llm.models import load_llm
from dl2llm.plots import plt, save_figure
from dl2llm.runtime import UsageError, set_seed

NAME = "parameter_efficient_tuning"
METHODS = "full,lora_r1,lora_r4,lora_r16,adapters,prefix"
TARGET_RELATIVE_SCORE, TARGET_TRAINABLE_PCT = 0.98, 2.0


@dataclass
class PeftConfig:
    """Sizes of the week 4 comparison (``quick()`` shrinks them for CI)."""

    methods: list[str] = field(default_factory=lambda: METHODS.split(","))
    train_size: int | None = None  # training snippets (None: the whole split)
    eval_size: int | None = None  # validation and test snippets each (None: the test split's)
    epochs: int = 2
    learning_rates: dict[str, float] = field(default_factory=dict)  # overrides by family
    lora_embedding_rank: int = PeftFineTuneConfig.lora_embedding_rank
    smollm2_steps: int = 24  # SmolLM2 LoRA steps of 2 windows each (0: skip SmolLM2)
    smollm2_block: int = 128  # tokens per SmolLM2 window
    seed: int = 0

    @classmethod
    def quick(cls, seed: int = 0) -> PeftConfig:
        return cls(train_size=64, eval_size=64, epochs=1, smollm2_steps=2, smollm2_block=32,
                   seed=seed)  # fmt: skip

    def tune_config(self, n_positions: int) -> PeftFineTuneConfig:
        """The training settings; sequences leave room for prefix-tuning's prefix."""
        defaults = PeftFineTuneConfig()
        # every method reads the same tokens; prefix-tuning's prefix takes positions too
        max_length = min(defaults.max_length, n_positions - defaults.prefix_length)
        return PeftFineTuneConfig(
            epochs=self.epochs,
            max_length=max_length,
            lora_embedding_rank=self.lora_embedding_rank,
            learning_rates={**defaults.learning_rates, **self.learning_rates},
        )


def parse_learning_rates(text: str) -> dict[str, float]:
    """``"full=1e-3,lora=2e-3"`` -> ``{"full": 0.001, "lora": 0.002}`` (argparse type)."""
    families = PeftFineTuneConfig().learning_rates
    rates = {}
    for item in filter(None, text.split(",")):
        family, _, value = item.partition("=")
        if family.strip() not in families:
            raise argparse.ArgumentTypeError(f"'{family}' is not one of {', '.join(families)}")
        try:
            rate = float(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"'{item}': need family=rate") from error
        if not rate > 0:
            raise argparse.ArgumentTypeError(f"'{item}': the rate must be positive")
        rates[family.strip()] = rate
    return rates


def parse_methods(text: str) -> list[str]:
    """``"full, lora_r4"`` -> ``["full", "lora_r4"]``, or ``UsageError`` for unknown methods."""
    methods = [m.strip() for m in text.split(",") if m.strip()]
    if not methods:
        raise UsageError("--methods: name at least one method")
    for method in methods:
        parse_method(method)
    return methods


@dataclass
class Task:
    """The pretrained classifier and the encoded sentiment splits every method trains on."""

    pretrained: torch.nn.Module
    tune: PeftFineTuneConfig
    splits: dict[str, dict[str, torch.Tensor]]  # split -> input_ids/attention_mask (N, T), labels
    train_size: int
    eval_size: int


def load_task(model_dir: Path, config: PeftConfig) -> Task:
    """Load the GPT-2 classifier (new random head) and encode the sentiment splits."""
    pretrained = load_classifier(model_dir)
    tune = config.tune_config(pretrained.config.n_positions)
    tokenizer = load_tokenizer(model_dir)
    pretrained.config.pad_token_id = tokenizer.pad_token_id
    data = sentiment_splits()
    train_size = config.train_size or len(data["train"])
    eval_size = config.eval_size or len(data["test"])
    splits = {
        "train": encode(tokenizer, data["train"].head(train_size), tune.max_length),
        "val": encode(tokenizer, data["val"].head(eval_size), tune.max_length),
        "test": encode(tokenizer, data["test"].head(eval_size), tune.max_length),
    }
    return Task(pretrained, tune, splits, train_size, eval_size)


def compare_methods(
    task: Task,
    methods: list[str],
    device: torch.device,
    seed: int,
    progress_file: Path,
    run_config: dict[str, Any],
) -> list[MethodResult]:
    """Fine-tune a copy of the pretrained model per method, resuming finished ones.

    Each finished method is saved to ``progress_file`` with ``run_config``; a later run
    with the same ``run_config`` skips it. Every method starts from the same seed.
    """
    done = load_progress(progress_file, run_config)
    for method in methods:
        if method in done:
            print(f"{method}: resumed from {progress_file}")
            continue
        set_seed(seed)
        model = prepare(copy.deepcopy(task.pretrained), method, task.tune)
        done[method] = fine_tune(model, method, task.splits, task.tune, device, seed)
        save_progress(progress_file, run_config, done)
        del model
    return [done[method] for method in methods]


def best_lora(results: list[MethodResult]) -> MethodResult | None:
    """The LoRA run under the trainable-share target that did best on validation (not test)."""
    lora = [
        r for r in results if r.method.startswith("lora") and r.trainable_pct < TARGET_TRAINABLE_PCT
    ]
    return max(lora, key=lambda r: r.val_accuracy) if lora else None


def method_metrics(
    results: list[MethodResult], tune: PeftFineTuneConfig, n_test: int
) -> dict[str, Any]:
    """Each method's numbers, relative to full fine-tuning, and whether LoRA met the target."""
    metrics: dict[str, Any] = {}
    full = next((r for r in results if r.method == "full"), None)
    for result in results:
        low, high = accuracy_interval(result.test_accuracy, n_test)
        metrics.update(
            {
                f"{result.method}_accuracy": result.test_accuracy,
                f"{result.method}_accuracy_ci95": [round(low, 4), round(high, 4)],
                f"{result.method}_val_accuracy": result.val_accuracy,
                f"{result.method}_val_accuracies": [round(a, 4) for a in result.val_accuracies],
                f"{result.method}_learning_rate": tune.learning_rate(result.method),
                f"{result.method}_trainable_pct": round(result.trainable_pct, 4),
                f"{result.method}_trainable": result.trainable,
                f"{result.method}_train_time_s": round(result.train_time_s, 2),
                f"{result.method}_peak_mib": round(result.peak_memory_mib, 1),
            }
        )
        if full:
            metrics[f"{result.method}_relative_score"] = round(
                result.test_accuracy / full.test_accuracy, 4
            )
    best = best_lora(results)
    if full and best:
        met = best.test_accuracy >= TARGET_RELATIVE_SCORE * full.test_accuracy
        metrics.update(best_lora=best.method, lora_target_met=met)
    return metrics


def comparison_table(results: list[MethodResult], tune: PeftFineTuneConfig, n_test: int) -> str:
    """One row per method, then the target verdict when full fine-tuning and LoRA both ran."""
    full = next((r for r in results if r.method == "full"), None)
    lines = [f"\n{'method':<10} {'lr':>7} {'trainable':>10} {'share %':>8} {'val acc':>8} "
             f"{'test acc':>9} {'95% interval':>14} {'rel. full':>9} {'time s':>7} "
             f"{'peak MiB':>9}"]  # fmt: skip
    for result in results:
        low, high = accuracy_interval(result.test_accuracy, n_test)
        shown = "-" if full is None else f"{result.test_accuracy / full.test_accuracy:.3f}"
        lines.append(
            f"{result.method:<10} {tune.learning_rate(result.method):>7.0e} "
            f"{result.trainable:>10,} {result.trainable_pct:>8.3f} {result.val_accuracy:>8.4f} "
            f"{result.test_accuracy:>9.4f} {f'{low:.3f}-{high:.3f}':>14} {shown:>9} "
            f"{result.train_time_s:>7.1f} {result.peak_memory_mib:>9.1f}"
        )
    best = best_lora(results)
    if full and best:
        met = best.test_accuracy >= TARGET_RELATIVE_SCORE * full.test_accuracy
        # the sampling error shown is the last row's interval (all rows share n_test)
        low, high = accuracy_interval(results[-1].test_accuracy, n_test)
        lines.append(
            f"\ntarget: LoRA >= {TARGET_RELATIVE_SCORE:.0%} of full fine-tuning with "
            f"< {TARGET_TRAINABLE_PCT}% trainable -> {best.method} (best on validation): "
            f"{best.test_accuracy / full.test_accuracy:.3f} of full "
            f"({'met' if met else 'missed'}); "
            f"test accuracies carry +-{100 * (high - low) / 2:.1f} points of sampling error "
            f"({n_test} examples)"
        )
    return "\n".join(lines)


def plot_comparison(results: list[MethodResult], path: Path) -> Path:
    """Test accuracy against trainable share (log scale), and smoothed training losses."""
    fig, (score, curves) = plt.subplots(1, 2, figsize=(13, 4.5))
    for result in results:
        score.scatter(result.trainable_pct, 100 * result.test_accuracy, s=60)
        score.annotate(result.method, (result.trainable_pct, 100 * result.test_accuracy))
        window = max(1, len(result.losses) // 20)
        smooth = [
            sum(result.losses[i : i + window]) / window
            for i in range(0, len(result.losses) - window + 1, window)
        ]
        curves.plot([i * window for i in range(len(smooth))], smooth, label=result.method)
    score.set(
        xscale="log",
        xlabel="trainable parameters (% of model, log scale)",
        ylabel="test accuracy (%)",
        title="score vs trainable parameters",
    )
    curves.set(xlabel="step", ylabel="training loss (smoothed)", title="training loss")
    curves.legend()
    fig.tight_layout()
    return save_figure(fig, path, dpi=110, bbox_inches=None)


def smollm2_lora(
    steps: int, block: int, device: torch.device, adapter_path: Path
) -> LanguageModelResult:
    """Our LoRA on SmolLM2 (Llama architecture) on *Botchan*; saves the adapter alone."""
    llm, tokenizer = load_llm()
    text = lm_splits()
    lm = lora_language_model(
        llm,
        lm_windows(tokenizer, text["train"], block, steps * 2),  # (2 * steps, block)
        lm_windows(tokenizer, text["val"], block, max(2, steps // 4)),
        batch_size=2,
        device=device,
    )
    save_lora(llm, adapter_path)
    return lm


def smollm2_metrics(lm: LanguageModelResult) -> dict[str, Any]:
    """Held-out perplexity before and after, trainable share, time and memory."""
    return {
        "smollm2_perplexity_before": round(lm.perplexity_before, 3),
        "smollm2_perplexity_after": round(lm.perplexity_after, 3),
        "smollm2_trainable_pct": round(100 * lm.trainable / lm.total, 4),
        "smollm2_train_time_s": round(lm.train_time_s, 2),
        "smollm2_peak_mib": round(lm.peak_memory_mib, 1),
    }


@dataclass
class PeftLesson:
    """What :func:`run_lesson` measured and wrote."""

    metrics: dict[str, Any]
    config: dict[str, Any]  # as the results JSON records it
    artifacts: list[str]  # file names in the output folder
    results: list[MethodResult]
    tune: PeftFineTuneConfig
    n_test: int
    smollm2: LanguageModelResult | None = None

    def report(self) -> str:
        """The comparison table, the target verdict and the SmolLM2 line."""
        text = comparison_table(self.results, self.tune, self.n_test)
        if self.smollm2:
            lm = self.smollm2
            text += (
                f"\n\nSmolLM2 + our LoRA (q_proj, v_proj, r=8): {lm.trainable:,} trainable "
                f"({100 * lm.trainable / lm.total:.3f}%), held-out perplexity "
                f"{lm.perplexity_before:.2f} -> {lm.perplexity_after:.2f} in "
                f"{lm.train_time_s:.1f} s; adapter: {self.artifacts[-1]}"
            )
        return text


def run_lesson(config: PeftConfig, model_dir: Path, device: torch.device, out: Path) -> PeftLesson:
    """Compare the methods on ``model_dir``'s GPT-2, plot them, run SmolLM2 LoRA (see above).

    Writes the plot and the SmolLM2 adapter to ``out``; the progress file there is
    removed once every step has finished.
    """
    hf_logging.set_verbosity_error()  # the new head's "missing weights" report is expected
    task = load_task(model_dir, config)
    print(
        f"model: {model_dir}; {task.train_size} training snippets; "
        f"methods: {', '.join(config.methods)}"
    )
    run_config = {
        **asdict(task.tune),
        "model": str(model_dir),
        "train_size": task.train_size,
        "eval_size": task.eval_size,
        "seed": config.seed,
        "device": str(device),
    }
    progress_file = out / f".{NAME}.progress.json"
    results = compare_methods(task, config.methods, device, config.seed, progress_file, run_config)

    metrics: dict[str, Any] = {"model": str(model_dir), "train_size": task.train_size}
    metrics.update(method_metrics(results, task.tune, task.eval_size))
    artifacts = [f"{NAME}_comparison.png"]
    out.mkdir(parents=True, exist_ok=True)
    plot_comparison(results, out / artifacts[0])
    smollm2 = None
    if config.smollm2_steps > 0:
        artifacts.append(f"{NAME}_smollm2_lora.safetensors")
        smollm2 = smollm2_lora(
            config.smollm2_steps, config.smollm2_block, device, out / artifacts[-1]
        )
        metrics.update(smollm2_metrics(smollm2))
    metrics["loss_curves"] = {r.method: r.losses for r in results}
    progress_file.unlink(missing_ok=True)
    saved_config = {**run_config, "methods": config.methods, "smollm2_steps": config.smollm2_steps}
    return PeftLesson(metrics, saved_config, artifacts, results, task.tune, task.eval_size, smollm2)
