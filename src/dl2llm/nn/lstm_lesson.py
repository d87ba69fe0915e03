"""Week 1 lesson: an LSTM language model against a Kneser-Ney n-gram baseline.

The experiment behind ``weeks/week1_foundations/lstm_language_model.py``:
tokenise *Botchan* into words, build the vocabulary on the training split
(rare words -> ``<unk>``), fit an interpolated Kneser-Ney trigram model and
train an LSTM on exactly the same tokens, compare validation and test
perplexity, and sample text at a few temperatures.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from dl2llm.data import lm_splits
from dl2llm.nn.lstm_lm import (
    LMTrainConfig,
    LSTMLanguageModel,
    Vocabulary,
    evaluate_nll,
    generate,
    tokenize,
    train_lm,
)
from dl2llm.nn.ngram import KneserNeyLM
from dl2llm.plots import plot_curves


@dataclass
class LSTMLessonConfig:
    """Model and data sizes (``quick()`` shrinks them for CI)."""

    dim: int = 256
    layers: int = 2
    dropout: float = 0.4
    min_count: int = 2
    ngram_order: int = 3
    train_tokens: int | None = None
    train: LMTrainConfig = field(default_factory=lambda: LMTrainConfig(epochs=12))

    @classmethod
    def quick(cls) -> LSTMLessonConfig:
        return cls(dim=48, layers=1, dropout=0.1, train_tokens=6000,
                   train=LMTrainConfig(epochs=2, batch_size=16))  # fmt: skip


def run_lesson(
    config: LSTMLessonConfig, out: Path, seed: int, device: torch.device, resume: bool
) -> tuple[dict, list[str]]:
    """Train and evaluate both models; returns ``(metrics, artifacts)``."""
    splits = lm_splits()
    tokens = {name: tokenize(text) for name, text in splits.items()}
    if config.train_tokens:
        tokens["train"] = tokens["train"][: config.train_tokens]
    vocab = Vocabulary.build(tokens["train"], config.min_count)

    kneser_ney = KneserNeyLM(config.ngram_order).fit(vocab.map_unknown(tokens["train"]))
    kn_val = kneser_ney.perplexity(vocab.map_unknown(tokens["val"]))
    kn_test = kneser_ney.perplexity(vocab.map_unknown(tokens["test"]))

    torch.manual_seed(seed)
    model = LSTMLanguageModel(len(vocab), config.dim, config.layers, config.dropout).to(device)
    ids = {name: vocab.encode(toks).to(device) for name, toks in tokens.items()}
    checkpoint = out / "lstm_language_model.ckpt"
    if not resume:
        checkpoint.unlink(missing_ok=True)
    result = train_lm(model, ids["train"], ids["val"], config.train, checkpoint)
    history = result["history"]
    val_ppl = math.exp(evaluate_nll(model, ids["val"]))
    test_ppl = math.exp(evaluate_nll(model, ids["test"]))

    generator = torch.Generator(device=device).manual_seed(seed)
    samples = {
        f"temperature {t}": generate(
            model, vocab, "I", 25, temperature=t, top_k=40, generator=generator
        )  # fmt: skip
        for t in (0.7, 1.0)
    }
    plot_curves(
        {
            "LSTM train": [math.exp(x) for x in history["train_loss"]],
            "LSTM validation": [math.exp(x) for x in history["val_loss"]],
            f"Kneser-Ney {config.ngram_order}-gram validation": [kn_val] * len(history["val_loss"]),
        },
        "LSTM language model on Botchan (perplexity, lower is better)",
        "perplexity",
        out / "lstm_language_model_curves.png",
    )
    metrics = {
        "vocab_size": len(vocab),
        "train_tokens": len(tokens["train"]),
        "val_perplexity": val_ppl,
        "test_perplexity": test_ppl,
        "kn_val_perplexity": kn_val,
        "kn_test_perplexity": kn_test,
        "lstm_beats_kn": test_ppl < kn_test,
        "best_epoch": result["best_epoch"] + 1,
        "epochs_trained": len(history["val_loss"]),
        "history": history,
        "samples": samples,
        "model_config": {"dim": config.dim, "layers": config.layers, "train": asdict(config.train)},
    }
    return metrics, ["lstm_language_model_curves.png"]
