"""What ``weeks/week4_optimization/parameter_efficient_tuning.py`` runs: PEFT against full tuning.

A pretrained encoder (offline: all-MiniLM-L6-v2) is fine-tuned for sentiment with
each method of :mod:`dl2llm.finetune.experiment` (full, ``lora_r{r}``,
``lora_r{r}_emb``, adapters, prefix), each from the same pretrained weights.
:func:`run_lesson`

1. encodes the train/validation/test snippets (:func:`load_task`);
2. chooses each method family's learning rate on the validation split: every
   family gets the same grid size, run at the first seed (:func:`tune_learning_rates`);
3. trains every method at its family's rate with several seeds, recording each
   finished run in a progress file so that a killed run resumes (:func:`run_all`);
4. reports each method's mean test accuracy over seeds and its paired difference
   from full fine-tuning, seed by seed and item by item (:mod:`dl2llm.finetune.peft_stats`),
   and checks the target: LoRA reaches >= 98% of full fine-tuning's accuracy with < 2% of
   the parameters trainable. TF-IDF + logistic regression trained on the same snippets
   (:func:`bag_of_words_accuracy`) says whether the pretrained encoder earns its place;
5. runs our LoRA on SmolLM2 as causal-LM fine-tuning, held-out loss before and after,
   and saves the adapter alone (:func:`smollm2_lora`).

Tuning on the first seed and reusing that run as the first seed's result is the usual
protocol; the test split is read once per run and never used to choose anything.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.utils import logging as hf_logging

from dl2llm.classification import tfidf_baseline
from dl2llm.data import LabelledTexts, lm_splits, sentiment_splits
from dl2llm.finetune import save_lora
from dl2llm.finetune.experiment import (
    LanguageModelResult,
    PeftFineTuneConfig,
    RunResult,
    encode,
    fine_tune,
    lm_windows,
    load_classifier,
    load_progress,
    load_tokenizer,
    lora_language_model,
    parse_method,
    prepare,
    run_key,
    save_progress,
)
from dl2llm.finetune.peft_stats import comparison_table, method_metrics, plot_comparison
from dl2llm.models import load_llm
from dl2llm.runtime import UsageError, set_seed

NAME = "parameter_efficient_tuning"
METHODS = "full,lora_r1,lora_r4,lora_r16,lora_r4_emb,adapters,prefix"
TUNED_ON = {"lora": "lora_r4"}  # the family member whose runs choose the family's rate
LEARNING_RATE_GRID = {  # three rates per family, a factor of about 3 apart
    "full": (3e-5, 1e-4, 3e-4),
    "lora": (1e-3, 3e-3, 1e-2),
    "adapters": (1e-3, 3e-3, 1e-2),
    "prefix": (3e-3, 1e-2, 3e-2),
}


@dataclass
class PeftConfig:
    """Sizes of the week 4 comparison (``quick()`` shrinks them for CI)."""

    methods: list[str] = field(default_factory=lambda: METHODS.split(","))
    seeds: int = 3  # runs per method, seeds seed, seed + 1, ...
    train_size: int | None = 800  # training snippets (None: the whole split)
    val_size: int | None = 300  # validation snippets (None: the whole split)
    test_size: int | None = None  # test snippets (None: the whole split)
    epochs: int = 1
    grid: dict[str, tuple[float, ...]] = field(default_factory=lambda: dict(LEARNING_RATE_GRID))
    smollm2_steps: int = 16  # SmolLM2 LoRA steps of 2 windows each (0: skip SmolLM2)
    smollm2_block: int = 128  # tokens per SmolLM2 window
    model: str | None = None  # encoder folder or hub name (None: the offline MiniLM)
    seed: int = 0

    @classmethod
    def quick(cls, seed: int = 0) -> PeftConfig:
        grid = {family: rates[1:2] for family, rates in LEARNING_RATE_GRID.items()}
        return cls(seeds=2, train_size=16, val_size=16, test_size=16, grid=grid,
                   smollm2_steps=2, smollm2_block=32, seed=seed)  # fmt: skip

    def fix_learning_rates(self, rates: dict[str, float]) -> None:
        """Use ``rates`` (family -> rate) instead of a grid search for those families."""
        self.grid.update({family: (rate,) for family, rate in rates.items()})


def parse_learning_rates(text: str) -> dict[str, float]:
    """``"full=1e-3,lora=2e-3"`` -> ``{"full": 0.001, "lora": 0.002}``, or ``UsageError``."""
    rates = {}
    for item in filter(None, text.split(",")):
        family, _, value = item.partition("=")
        if family.strip() not in LEARNING_RATE_GRID:
            raise UsageError(f"--lr: '{family}' is not one of {', '.join(LEARNING_RATE_GRID)}")
        try:
            rate = float(value)
        except ValueError as error:
            raise UsageError(f"--lr: '{item}': need family=rate") from error
        if not rate > 0:
            raise UsageError(f"--lr: '{item}': the rate must be positive")
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


def lesson_splits(config: PeftConfig) -> dict[str, LabelledTexts]:
    """The first ``config.<split>_size`` snippets of each sentiment split (``None``: all)."""
    data = sentiment_splits()
    sizes = {"train": config.train_size, "val": config.val_size, "test": config.test_size}
    return {name: data[name].head(size or len(data[name])) for name, size in sizes.items()}


def load_task(config: PeftConfig, tune: PeftFineTuneConfig) -> Task:
    """Load the encoder with a new head and encode the sentiment splits."""
    pretrained = load_classifier(config.model)
    tokenizer = load_tokenizer(config.model)
    splits = {
        name: encode(tokenizer, texts, tune.max_length)
        for name, texts in lesson_splits(config).items()
    }
    return Task(pretrained, tune, splits)


def bag_of_words_accuracy(config: PeftConfig) -> float:
    """Test accuracy of TF-IDF + logistic regression on the lesson's snippets.

    It trains on the same training snippets as every fine-tuned method and picks its
    regularisation on the same validation snippets, so it is the fair bag-of-words yardstick.
    """
    splits = lesson_splits(config)
    predicted = tfidf_baseline(splits["train"], splits["val"], splits["test"])  # (N,)
    return float((predicted == np.asarray(splits["test"].labels)).mean())


def tuning_method(family: str) -> str:
    """The method whose validation accuracy chooses ``family``'s learning rate."""
    return TUNED_ON.get(family, family)


class Runner:
    """Runs (method, learning rate, seed) once each, resuming finished runs from a file."""

    def __init__(self, task: Task, device: torch.device, progress_file: Path, run_config: dict):
        self.task, self.device = task, device
        self.progress_file, self.run_config = progress_file, run_config
        self.done = load_progress(progress_file, run_config)
        if self.done:
            print(f"resuming {len(self.done)} finished runs from {progress_file}")

    def run(self, method: str, learning_rate: float, seed: int) -> RunResult:
        key = run_key(method, learning_rate, seed)
        if key not in self.done:
            set_seed(seed)
            model = prepare(copy.deepcopy(self.task.pretrained), method, self.task.tune)
            result = fine_tune(
                model, method, learning_rate, self.task.splits, self.task.tune, self.device, seed
            )
            print(f"{key}: val {result.val_accuracy:.4f} ({result.train_time_s:.0f} s)")
            self.done[key] = result
            save_progress(self.progress_file, self.run_config, self.done)
        return self.done[key]


def tune_learning_rates(
    runner: Runner, families: list[str], grid: dict[str, tuple[float, ...]], seed: int
) -> dict[str, dict[float, float]]:
    """``{family: {rate: validation accuracy}}`` of each family's grid at ``seed``."""
    return {
        family: {
            rate: runner.run(tuning_method(family), rate, seed).val_accuracy
            for rate in grid[family]
        }
        for family in families
    }


def chosen_rates(search: dict[str, dict[float, float]]) -> dict[str, float]:
    """Each family's rate with the best validation accuracy (ties: the smaller rate)."""
    return {
        family: max(sorted(scores), key=lambda rate: scores[rate])
        for family, scores in search.items()
    }


def run_all(
    runner: Runner, methods: list[str], rates: dict[str, float], seeds: list[int]
) -> dict[str, list[RunResult]]:
    """Every method at its family's rate, once per seed (a tuning run is reused, not re-run)."""
    return {
        method: [runner.run(method, rates[parse_method(method).family], s) for s in seeds]
        for method in methods
    }


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
    """Held-out loss and perplexity before and after, trainable share, time and memory."""
    return {
        "smollm2_lora_val_loss_before": round(lm.val_loss_before, 4),
        "smollm2_lora_val_loss_after": round(lm.val_loss_after, 4),
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
    runs: dict[str, list[RunResult]]  # method -> one run per seed
    search: dict[str, dict[float, float]]  # family -> rate -> validation accuracy
    smollm2: LanguageModelResult | None = None

    def report(self) -> str:
        """The learning-rate search, the comparison table, the target and the SmolLM2 line."""
        lines = ["learning rate (validation accuracy at the first seed; * = chosen):"]
        for family, scores in self.search.items():
            best = chosen_rates({family: scores})[family]
            shown = ", ".join(
                f"{rate:g}{'*' if rate == best else ''} {acc:.3f}" for rate, acc in scores.items()
            )
            lines.append(f"  {family:<9} {shown}")
        text = "\n".join(lines) + comparison_table(self.runs)
        text += (
            "\nTF-IDF + logistic regression on the same snippets: "
            f"{self.metrics['tfidf_same_data_accuracy']:.4f}"
        )
        if self.smollm2:
            lm = self.smollm2
            text += (
                f"\n\nSmolLM2 + our LoRA (q_proj, v_proj, r=8): {lm.trainable:,} trainable "
                f"({100 * lm.trainable / lm.total:.3f}%), held-out loss "
                f"{lm.val_loss_before:.3f} -> {lm.val_loss_after:.3f} (perplexity "
                f"{lm.perplexity_before:.2f} -> {lm.perplexity_after:.2f}) in "
                f"{lm.train_time_s:.1f} s; adapter: {self.artifacts[-1]}"
            )
        return text


def run_lesson(config: PeftConfig, device: torch.device, out: Path) -> PeftLesson:
    """Tune, compare and plot the methods on the encoder, run SmolLM2 LoRA (see above).

    Writes the plot and the SmolLM2 adapter to ``out``; the progress file there is
    removed once every step has finished.
    """
    families = list(dict.fromkeys(parse_method(m).family for m in config.methods))
    missing = [family for family in families if not config.grid.get(family)]
    if missing:
        raise UsageError(f"no learning rates to try for {', '.join(missing)}")
    hf_logging.set_verbosity_error()  # the new head's "missing weights" report is expected
    tune = PeftFineTuneConfig(epochs=config.epochs)
    task = load_task(config, tune)
    sizes = {name: len(split["labels"]) for name, split in task.splits.items()}
    print(f"model: {task.pretrained.config.name_or_path}; sizes {sizes}; "
          f"methods: {', '.join(config.methods)}; {config.seeds} seeds")  # fmt: skip
    run_config = {
        **asdict(tune),
        "model": task.pretrained.config.name_or_path,
        "sizes": sizes,
        "device": str(device),
    }
    out.mkdir(parents=True, exist_ok=True)
    progress_file = out / f".{NAME}.progress.json"
    runner = Runner(task, device, progress_file, run_config)
    search = tune_learning_rates(runner, families, config.grid, config.seed)
    seeds = [config.seed + i for i in range(config.seeds)]
    runs = run_all(runner, config.methods, chosen_rates(search), seeds)

    metrics: dict[str, Any] = {"model": run_config["model"]}
    metrics.update({f"{split}_size": n for split, n in sizes.items()})
    metrics["learning_rate_search"] = {
        family: {f"{rate:g}": acc for rate, acc in scores.items()}
        for family, scores in search.items()
    }
    metrics.update(method_metrics(runs))
    metrics["tfidf_same_data_accuracy"] = round(bag_of_words_accuracy(config), 4)
    artifacts = [f"{NAME}_comparison.png"]
    plot_comparison(runs, out / artifacts[0])
    smollm2 = None
    if config.smollm2_steps > 0:
        artifacts.append(f"{NAME}_smollm2_lora.safetensors")
        smollm2 = smollm2_lora(
            config.smollm2_steps, config.smollm2_block, device, out / artifacts[-1]
        )
        metrics.update(smollm2_metrics(smollm2))
    metrics["loss_curves"] = {method: results[0].losses for method, results in runs.items()}
    progress_file.unlink(missing_ok=True)
    saved_config = {**run_config, "methods": config.methods, "seeds": seeds,
                    "grid": config.grid, "smollm2_steps": config.smollm2_steps}  # fmt: skip
    return PeftLesson(metrics, saved_config, artifacts, runs, search, smollm2)
