"""Week 2 lesson: pretrain the project's GPT-2, measure it, and hand it to later weeks.

The experiment behind ``weeks/week2_transformers/pretrain_gpt.py``: encode the
pretraining corpus with the real GPT-2 tokenizer, run :func:`dl2llm.pretrain.pretrain`
with a checkpoint in the results folder (a killed or ``stop_after`` run resumes there),
then save the model in Hugging Face format to the asset cache, reload it with
:meth:`GPT.from_hf` (it must give the same validation loss), compare with a unigram
baseline, sample a continuation of :data:`PROMPT` and plot the loss and learning-rate
curves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from dl2llm.finetune import count_parameters
from dl2llm.gpt import GPT
from dl2llm.models import load_gpt2_tokenizer
from dl2llm.plots import plt, save_figure
from dl2llm.pretrain import (
    PretrainConfig,
    cosine_learning_rate,
    encode_text,
    evaluate_loss,
    pretrain,
    pretraining_corpus,
    project_gpt2_dir,
    save_hf_folder,
    unigram_loss,
)

NAME = "pretrain_gpt"
PROMPT = "I was sent to the school in the country, and"
SHOWN = ("val_loss", "val_perplexity", "test_loss", "unigram_val_loss", "hf_reload_val_loss",
         "tokens_per_s", "train_minutes", "parameters")  # fmt: skip


@dataclass
class PretrainLesson:
    """One session of the lesson: finished (``metrics`` set) or paused at ``steps_done``."""

    steps_done: int
    checkpoint: Path
    config: dict[str, Any]
    metrics: dict[str, Any] | None = None
    folder: Path | None = None  # the Hugging Face folder of the trained model
    artifacts: list[str] = field(default_factory=list)

    @property
    def paused(self) -> bool:
        return self.metrics is None


def lesson_settings(quick: bool, seed: int, steps: int | None = None) -> PretrainConfig:
    """:class:`~dl2llm.pretrain.PretrainConfig` (or its ``quick()``) with ``seed`` and ``steps``."""
    settings = replace(PretrainConfig.quick() if quick else PretrainConfig(), seed=seed)
    return replace(settings, max_steps=steps) if steps else settings


def sample_text(model: GPT, tokenizer, seed: int) -> str:
    """A sampled continuation of :data:`PROMPT` (temperature 0.8, top-k 50, top-p 0.95)."""
    prompt = torch.tensor([tokenizer.encode_ordinary(PROMPT)])  # (1, T)
    new_tokens = min(60, model.config.context_length - prompt.size(1))
    generator = torch.Generator().manual_seed(seed)
    ids = model.generate(
        prompt, new_tokens, temperature=0.8, top_k=50, top_p=0.95, generator=generator
    )  # (1, T + new_tokens)
    return tokenizer.decode(ids[0].tolist())


def plot_curves(history: list[dict[str, float]], settings: PretrainConfig, path: Path) -> Path:
    """Train and validation loss per evaluation, and the learning rate of every step."""
    steps = [row["step"] for row in history]
    fig, (loss_ax, lr_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(steps, [row["train_loss"] for row in history], label="train (last batch)")
    loss_ax.plot(steps, [row["val_loss"] for row in history], label="validation")
    loss_ax.set(xlabel="step", ylabel="cross-entropy (nats/token)", title="GPT-2 pretraining")
    loss_ax.legend()
    every_step = range(settings.max_steps)
    lr_ax.plot(every_step, [cosine_learning_rate(step, settings) for step in every_step])
    lr_ax.set(xlabel="step", ylabel="learning rate", title="warmup + cosine schedule")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100, bbox_inches=None, image_format="png")


def run_lesson(
    settings: PretrainConfig,
    out: Path,
    device: torch.device,
    quick: bool,
    restart: bool = False,
    stop_after: int | None = None,
) -> PretrainLesson:
    """Pretrain (resuming from ``out/pretrain_gpt.ckpt`` unless ``restart``), then evaluate.

    ``stop_after`` pauses the session after that many steps in all; the checkpoint stays
    for the next call. A finished run removes its checkpoint, saves the model to
    :func:`~dl2llm.pretrain.project_gpt2_dir` and writes the curves plot to ``out``.
    """
    checkpoint = out / f"{NAME}.ckpt"
    if restart:
        checkpoint.unlink(missing_ok=True)
    tokenizer = load_gpt2_tokenizer()
    tokens = {split: encode_text(text, tokenizer) for split, text in pretraining_corpus().items()}
    result = pretrain(
        settings, tokens["train"], tokens["val"], checkpoint, device, stop_after=stop_after
    )
    config = {**settings.to_dict(), "device": str(device), "threads": torch.get_num_threads()}
    if result.steps_done < settings.max_steps:
        return PretrainLesson(result.steps_done, checkpoint, config)
    model = result.model.cpu()
    folder = save_hf_folder(model, project_gpt2_dir(quick))
    reloaded = GPT.from_hf(folder)
    metrics = {
        "val_loss": result.final_val_loss,
        "val_perplexity": math.exp(result.final_val_loss),
        "test_loss": evaluate_loss(model, tokens["test"]),
        "unigram_val_loss": unigram_loss(tokens["train"], tokens["val"], model.config.vocab_size),
        "hf_reload_val_loss": evaluate_loss(reloaded, tokens["val"]),
        "tokens_per_s": result.tokens_per_s,
        "train_minutes": result.train_seconds / 60,
        "train_tokens": result.train_tokens,
        "train_corpus_tokens": len(tokens["train"]),
        "parameters": count_parameters(model).total,
        "steps": settings.max_steps,
        "resumed_from_step": result.resumed_from_step,
        "sample": sample_text(model, tokenizer, settings.seed),
        "history": result.history,
    }
    checkpoint.unlink(missing_ok=True)
    curves_png = f"{NAME}_curves.png"
    plot_curves(result.history, settings, out / curves_png)
    return PretrainLesson(settings.max_steps, checkpoint, config, metrics, folder, [curves_png])
