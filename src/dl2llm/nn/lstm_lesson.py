"""Week 1 lesson: an LSTM language model against a Kneser-Ney n-gram baseline.

The experiment behind ``weeks/week1_foundations/lstm_language_model.py``:
tokenise a corpus into words, build a Penn-Treebank-style vocabulary on the
training split (at most 10k words, the rest -> ``<unk>``), fit an interpolated
Kneser-Ney trigram model and train an LSTM on exactly the same tokens, compare
validation and test perplexity, and sample text from both models.

Two corpora (:data:`CORPORA`): the Python 3.11 documentation sources (the
capstone's corpus; ~515k training tokens by default, 2M of its 11M characters, so
that a full run fits minutes on two CPU cores: half the size of Penn Treebank,
where Zaremba et al. (2014) found LSTMs 20-40% below Kneser-Ney) and the novel
*Botchan* (~56k training tokens: little text for the LSTM's advantage to show).
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from dl2llm.data import lm_splits, python_docs_texts
from dl2llm.errors import UsageError
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

CORPORA = ("python-docs", "botchan")
PROMPTS = {"python-docs": "the", "botchan": "I"}
TEMPERATURES = (0.7, 1.0)


@dataclass
class LSTMLessonConfig:
    """Data, model and training sizes; the defaults are the full run (``quick()`` for CI)."""

    data: str = "python-docs"
    max_chars: int | None = 2_000_000  # of the shuffled corpus, before the 90/5/5 split
    dim: int = 256
    layers: int = 2
    dropout: float = 0.3
    min_count: int = 2
    max_vocab: int | None = 10_000
    ngram_order: int = 3
    train_tokens: int | None = None
    sample_words: int = 25
    train: LMTrainConfig = field(default_factory=lambda: LMTrainConfig(epochs=4, batch_size=64))

    def __post_init__(self) -> None:
        if self.data not in CORPORA:
            raise UsageError(f"--data must be one of {', '.join(CORPORA)}, got '{self.data}'")

    @classmethod
    def for_data(cls, data: str) -> LSTMLessonConfig:
        """The full run on ``data`` (*Botchan* is small: more dropout, more epochs)."""
        if data == "botchan":
            return cls(data, dropout=0.4, train=LMTrainConfig(epochs=12))
        return cls(data)

    @classmethod
    def quick(cls, data: str = "python-docs") -> LSTMLessonConfig:
        return cls(data, max_chars=200_000, dim=48, layers=1, dropout=0.1, train_tokens=6000,
                   sample_words=8, train=LMTrainConfig(epochs=2, batch_size=16))  # fmt: skip


def corpus_splits(data: str, max_chars: int | None = None) -> dict[str, str]:
    """``{"train", "val", "test"}`` texts of a corpus in :data:`CORPORA`.

    The documentation files are shuffled with a fixed seed, joined and cut to
    ``max_chars`` (at a line end) so that every split mixes all parts of the docs.
    """
    if data == "botchan":
        return lm_splits()
    if data != "python-docs":
        raise UsageError(f"--data must be one of {', '.join(CORPORA)}, got '{data}'")
    texts = python_docs_texts()
    random.Random(0).shuffle(texts)
    text = "\n".join(texts)
    if max_chars is not None and len(text) > max_chars:
        text = text[: text.rfind("\n", 0, max_chars)]
    return lm_splits(text)


def sample_both(
    model: LSTMLanguageModel, kneser_ney: KneserNeyLM, vocab: Vocabulary, config: LSTMLessonConfig,
    seed: int, device: torch.device,
) -> dict[str, dict[str, str]]:  # fmt: skip
    """Samples from the LSTM (top-k 40) and the n-gram model after the same prompt."""
    prompt = PROMPTS[config.data]
    context = vocab.map_unknown(tokenize(prompt)[:-1])
    generator = torch.Generator(device=device).manual_seed(seed)
    lstm, ngram = {}, {}
    for t in TEMPERATURES:
        key = f"temperature {t}"
        lstm[key] = generate(model, vocab, prompt, config.sample_words, temperature=t, top_k=40,
                             generator=generator)  # fmt: skip
        words = kneser_ney.sample(context, config.sample_words, temperature=t, seed=seed)
        ngram[key] = " ".join(words).replace("<eos>", "/")
    return {"prompt": prompt, "lstm": lstm, "kneser_ney": ngram}


def run_lesson(
    config: LSTMLessonConfig, out: Path, seed: int, device: torch.device, resume: bool
) -> tuple[dict, list[str]]:
    """Train and evaluate both models; returns ``(metrics, artifacts)``."""
    splits = corpus_splits(config.data, config.max_chars)
    tokens = {name: tokenize(text) for name, text in splits.items()}
    if config.train_tokens:
        tokens["train"] = tokens["train"][: config.train_tokens]
    vocab = Vocabulary.build(tokens["train"], config.min_count, config.max_vocab)

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
    plot_curves(
        {
            "LSTM train": [math.exp(x) for x in history["train_loss"]],
            "LSTM validation": [math.exp(x) for x in history["val_loss"]],
            f"Kneser-Ney {config.ngram_order}-gram validation": [kn_val] * len(history["val_loss"]),
        },
        f"LSTM language model on {config.data} (perplexity, lower is better)",
        "perplexity",
        out / "lstm_language_model_curves.png",
    )
    unk = vocab.stoi["<unk>"]
    metrics = {
        "data": config.data,
        "vocab_size": len(vocab),
        "train_tokens": len(tokens["train"]),
        "test_tokens": len(tokens["test"]),
        "test_unk_rate": (ids["test"] == unk).float().mean().item(),
        "val_perplexity": val_ppl,
        "test_perplexity": test_ppl,
        "kn_val_perplexity": kn_val,
        "kn_test_perplexity": kn_test,
        "lstm_to_kn_perplexity_ratio": test_ppl / kn_test,
        "lstm_beats_kn": test_ppl < kn_test,
        "best_epoch": result["best_epoch"] + 1,
        "epochs_trained": len(history["val_loss"]),
        "history": history,
        "samples": sample_both(model, kneser_ney, vocab, config, seed, device),
        "model_config": {"dim": config.dim, "layers": config.layers, "train": asdict(config.train)},
    }
    return metrics, ["lstm_language_model_curves.png"]


def with_epochs(config: LSTMLessonConfig, epochs: int | None) -> LSTMLessonConfig:
    """``config`` with another number of epochs (``None`` keeps it)."""
    return config if epochs is None else replace(config, train=replace(config.train, epochs=epochs))
