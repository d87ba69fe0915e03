"""The week 3 embeddings lesson: train, compare with references, and watch data help.

The notebook ``weeks/week3_embeddings/embeddings_demo.ipynb`` tells the story;
this module does the work:

1. :func:`train_models` trains our Word2Vec (skip-gram with negative sampling,
   Mikolov et al., 2013), gensim's Word2Vec with the *same* settings (the
   parity check) and our GloVe (Pennington et al., 2014) on the same sentences.
2. Pretrained GloVe 6B (:mod:`dl2llm.embeddings.pretrained`) is the reference
   row: the same kind of vectors trained on ~6,000 times more text.
3. :func:`learning_curve` retrains on nested fractions of the corpus
   (1/8, 1/4, 1/2, all) and scores each run: word vectors are data-hungry, and
   the curve shows how far a small corpus is from the reference.
4. :func:`king_queen_rows` asks every model the classic analogy
   ``king - man + woman``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from gensim.models import KeyedVectors
from matplotlib.figure import Figure

from dl2llm.embeddings.corpus import Sentence, count_tokens
from dl2llm.embeddings.evaluation import evaluate
from dl2llm.embeddings.glove import train_glove
from dl2llm.embeddings.word2vec import train_gensim_word2vec, train_word2vec
from dl2llm.runtime import UsageError

OURS, GENSIM, GLOVE, GLOVE_6B = "word2vec (ours)", "gensim word2vec", "GloVe (ours)", "GloVe 6B"
PREFIX = {OURS: "word2vec", GENSIM: "gensim", GLOVE: "glove", GLOVE_6B: "glove6b"}
CURVE_MODELS = (OURS, GENSIM, GLOVE)


@dataclass(frozen=True)
class EmbeddingsDemoConfig:
    """Settings of the week 3 notebook; the defaults are the full run.

    ``word2vec`` holds the settings shared by our Word2Vec and gensim's (their
    argument names mean the same); ``glove`` those of our GloVe, with
    ``x_max = 10`` because in a corpus of a million tokens almost every
    co-occurrence count is far below the paper's 100.
    """

    corpus: str = "full"
    word2vec: dict = field(
        default_factory=lambda: dict(
            vector_size=100, window=5, min_count=5, negative=5, sample=1e-3, epochs=10
        )
    )
    glove: dict = field(
        default_factory=lambda: dict(vector_size=100, window=10, min_count=5, x_max=10.0, epochs=25)
    )
    fractions: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0)
    glove_6b_top_n: int = 30_000
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise UsageError(f"fractions must lie in (0, 1], got {self.fractions}")

    @classmethod
    def quick(cls, seed: int = 0) -> EmbeddingsDemoConfig:
        full = cls()
        return cls(
            corpus="small",
            word2vec={**full.word2vec, "epochs": 1},
            glove={**full.glove, "epochs": 2},
            fractions=(0.5, 1.0),
            seed=seed,
        )

    def with_seed(self, seed: int) -> EmbeddingsDemoConfig:
        return replace(self, seed=seed)


def corpus_fractions(
    sentences: list[Sentence], fractions: tuple[float, ...], seed: int = 0
) -> dict[float, list[Sentence]]:
    """Nested subsets: the first ``fraction`` of the sentences in one seeded shuffled order.

    Shuffling first mixes the sources (a prefix of the unshuffled list would be
    all novel); nesting means each larger subset only adds text.

    >>> parts = corpus_fractions([["a", "b"]] * 8, (0.25, 0.5, 1.0))
    >>> [len(part) for part in parts.values()]
    [2, 4, 8]
    """
    order = list(range(len(sentences)))
    random.Random(seed).shuffle(order)
    return {
        f: [sentences[i] for i in order[: max(1, round(f * len(sentences)))]] for f in fractions
    }


def train_models(
    sentences: list[Sentence],
    config: EmbeddingsDemoConfig,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[dict[str, KeyedVectors], dict[str, float]]:
    """Our Word2Vec, gensim's and our GloVe on the same sentences, with training seconds."""
    trainers = {
        OURS: lambda: train_word2vec(
            sentences, **config.word2vec, seed=config.seed, device=device, progress=progress
        ),
        GENSIM: lambda: train_gensim_word2vec(sentences, **config.word2vec, seed=config.seed),
        GLOVE: lambda: train_glove(
            sentences, **config.glove, seed=config.seed, device=device, progress=progress
        ),
    }
    models, seconds = {}, {}
    for name, train in trainers.items():
        tick = time.perf_counter()
        models[name] = train()
        seconds[name] = time.perf_counter() - tick
    return models, seconds


def curve_row(fraction: float, tokens: int, name: str, keyed: KeyedVectors) -> dict:
    scores = evaluate(keyed)
    keys = ("analogy_accuracy", "analogy_coverage", "wordsim_spearman", "wordsim_coverage")
    return {"fraction": fraction, "tokens": tokens, "model": name} | {k: scores[k] for k in keys}


def learning_curve(
    sentences: list[Sentence],
    config: EmbeddingsDemoConfig,
    full_models: dict[str, KeyedVectors],
    device: str | torch.device = "cpu",
) -> list[dict]:
    """Scores of each model in :data:`CURVE_MODELS` trained on each fraction of the corpus.

    The fraction 1.0 reuses ``full_models`` (already trained on all of it).
    """
    rows = []
    for fraction, part in corpus_fractions(sentences, config.fractions, config.seed).items():
        if fraction == 1.0:
            models = full_models
        else:
            models, _ = train_models(part, config, device, progress=False)
        tokens = count_tokens(part)
        rows += [curve_row(fraction, tokens, name, models[name]) for name in CURVE_MODELS]
    return rows


def plot_learning_curve(rows: list[dict], reference: dict, path: str | Path) -> Path:
    """Analogy accuracy and WordSim-353 against training tokens; GloVe 6B dashed."""
    from dl2llm.plots import save_figure

    figure = Figure(figsize=(10, 4))
    panels = (("analogy_accuracy", "analogy accuracy"), ("wordsim_spearman", "WordSim-353 rho"))
    for axis, (key, label) in zip(figure.subplots(1, 2), panels, strict=True):
        for name in CURVE_MODELS:
            mine = [r for r in rows if r["model"] == name]
            axis.plot([r["tokens"] for r in mine], [r[key] for r in mine], "o-", label=name)
        axis.axhline(reference[key], color="grey", linestyle="--", label=f"{GLOVE_6B} (6B tokens)")
        axis.set_xscale("log")
        axis.set_xlabel("training tokens")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    figure.axes[0].legend(fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path, image_format="png")


def king_queen_rows(models: dict[str, KeyedVectors], topn: int = 3) -> list[dict[str, str]]:
    """Each model's ``topn`` answers to ``king - man + woman`` (3CosAdd, the inputs excluded)."""
    rows = []
    for name, keyed in models.items():
        if all(w in keyed.key_to_index for w in ("king", "man", "woman")):
            found = keyed.most_similar(positive=["king", "woman"], negative=["man"], topn=topn)
            answer = ", ".join(f"{word} ({score:.2f})" for word, score in found)
        else:
            answer = "(a word is not in the vocabulary)"
        rows.append({"model": name, "king - man + woman": answer})
    return rows


def top_answer(row: dict[str, str]) -> str:
    """The first word of a :func:`king_queen_rows` answer."""
    return row["king - man + woman"].split(" (")[0]


def curve_gain(curve: list[dict], model: str, key: str) -> float:
    """``key`` on the whole corpus minus ``key`` on the smallest fraction, for ``model``."""
    mine = sorted((r for r in curve if r["model"] == model), key=lambda r: r["fraction"])
    return mine[-1][key] - mine[0][key]


def summary_metrics(
    rows: list[dict], king_rows: list[dict[str, str]], curve: list[dict]
) -> dict[str, object]:
    """The results-JSON metrics of the evaluation table, the king test and the learning curve.

    Per model (prefix from :data:`PREFIX`): analogy accuracy (all, semantic,
    syntactic) and WordSim-353 Spearman; coverage of our shared vocabulary and
    of GloVe 6B's; each model's answer to ``king - man + woman``; how much our
    Word2Vec gained from the smallest fraction of the corpus to all of it.
    """
    scores = {row["model"]: row for row in rows}
    metrics: dict[str, object] = {}
    for name, row in scores.items():
        for key in ("analogy_accuracy", "analogy_semantic_accuracy",
                    "analogy_syntactic_accuracy", "wordsim_spearman"):  # fmt: skip
            metrics[f"{PREFIX[name]}_{key}"] = row[key]
    for key in ("analogy_coverage", "analogy_evaluated", "wordsim_coverage", "wordsim_evaluated"):
        metrics[key] = scores[OURS][key]
        if GLOVE_6B in scores:
            metrics[f"glove6b_{key}"] = scores[GLOVE_6B][key]
    answers = {row["model"]: top_answer(row) for row in king_rows}
    metrics |= {f"{PREFIX[name]}_king_man_woman": answer for name, answer in answers.items()}
    metrics["glove6b_king_man_woman_is_queen"] = float(answers.get(GLOVE_6B) == "queen")
    metrics["learning_curve"] = curve
    metrics["word2vec_curve_analogy_gain"] = curve_gain(curve, OURS, "analogy_accuracy")
    metrics["word2vec_curve_wordsim_gain"] = curve_gain(curve, OURS, "wordsim_spearman")
    return metrics
