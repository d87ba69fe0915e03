"""Intrinsic evaluation of word vectors: analogies and word similarity.

- **Analogies** (Mikolov et al., 2013, ``questions-words.txt``): 19,544
  questions "a is to b as c is to ?", in 14 sections (5 semantic such as
  capital-country, 9 syntactic such as adjective-adverb). The answer is the word
  closest by cosine to ``b - a + c`` on unit vectors ("3CosAdd"), excluding
  ``a``, ``b`` and ``c``; a question counts only when all four words are in the
  vocabulary.
- **Word similarity** (WordSim-353, Finkelstein et al., 2002): 353 word pairs
  with human relatedness scores 0..10; the score is the Spearman rank
  correlation between the humans and the cosine similarities, over the pairs
  whose two words are in the vocabulary.

Small corpora cover only part of each test set, so every score comes with its
**coverage** (the fraction of items evaluated). The protocol matches gensim's
``KeyedVectors.evaluate_word_analogies`` and ``evaluate_word_pairs``
(lower-cased); the tests check that both give the same numbers. Analogies are
solved in batches with one matrix product instead of one query at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors
from scipy.stats import spearmanr

from dl2llm.data import gensim_test_file

ANALOGY_FILE, SIMILARITY_FILE = "questions-words.txt", "wordsim353.tsv"


@dataclass(frozen=True)
class Analogy:
    section: str
    a: str
    b: str
    c: str
    expected: str

    @property
    def semantic(self) -> bool:
        """Syntactic sections are named ``gram1-...`` to ``gram9-...``."""
        return not self.section.startswith("gram")


@dataclass(frozen=True)
class AnalogyResult:
    n_questions: int
    n_evaluated: int
    n_correct: int
    n_semantic_correct: int
    n_semantic_evaluated: int

    @property
    def accuracy(self) -> float:
        return self.n_correct / self.n_evaluated if self.n_evaluated else 0.0

    @property
    def coverage(self) -> float:
        return self.n_evaluated / self.n_questions

    @property
    def semantic_accuracy(self) -> float:
        evaluated = self.n_semantic_evaluated
        return self.n_semantic_correct / evaluated if evaluated else 0.0

    @property
    def syntactic_accuracy(self) -> float:
        evaluated = self.n_evaluated - self.n_semantic_evaluated
        correct = self.n_correct - self.n_semantic_correct
        return correct / evaluated if evaluated else 0.0


@dataclass(frozen=True)
class SimilarityResult:
    n_pairs: int
    n_evaluated: int
    spearman: float

    @property
    def coverage(self) -> float:
        return self.n_evaluated / self.n_pairs


def read_analogies(path: str | Path | None = None) -> list[Analogy]:
    """The questions of an analogy file (default ``questions-words.txt``), lower-cased."""
    path = Path(path) if path else gensim_test_file(ANALOGY_FILE)
    questions, section = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(":"):
            section = line[1:].strip()
        elif line.strip():
            a, b, c, expected = line.lower().split()
            questions.append(Analogy(section, a, b, c, expected))
    return questions


def read_word_pairs(path: str | Path | None = None) -> list[tuple[str, str, float]]:
    """``(word, word, human score)`` of a similarity file (default ``wordsim353.tsv``)."""
    path = Path(path) if path else gensim_test_file(SIMILARITY_FILE)
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        first, second, score = line.lower().split("\t")
        pairs.append((first, second, float(score)))
    return pairs


def unit_vectors(keyed: KeyedVectors) -> np.ndarray:
    """Rows scaled to length 1, ``(V, D)``."""
    norms = np.linalg.norm(keyed.vectors, axis=1, keepdims=True)
    return keyed.vectors / np.maximum(norms, 1e-12)


def answer_analogies(
    keyed: KeyedVectors, questions: list[tuple[str, str, str]], batch_size: int = 1024
) -> list[str]:
    """3CosAdd answers to in-vocabulary ``(a, b, c)`` questions: ``argmax cos(x, b - a + c)``."""
    unit = unit_vectors(keyed)  # (V, D)
    ids = np.array([[keyed.key_to_index[w] for w in q] for q in questions]).reshape(-1, 3)
    answers = []
    for start in range(0, len(ids), batch_size):
        a, b, c = ids[start : start + batch_size].T  # each (Q,)
        scores = (unit[b] - unit[a] + unit[c]) @ unit.T  # (Q, V)
        rows = np.arange(len(a))
        for excluded in (a, b, c):
            scores[rows, excluded] = -np.inf
        answers += [keyed.index_to_key[i] for i in scores.argmax(axis=1)]
    return answers


def evaluate_analogies(
    keyed: KeyedVectors, questions: list[Analogy] | None = None
) -> AnalogyResult:
    """Accuracy over the questions whose four words are all in the vocabulary."""
    questions = read_analogies() if questions is None else questions
    known = [
        q for q in questions if all(w in keyed.key_to_index for w in (q.a, q.b, q.c, q.expected))
    ]
    answers = answer_analogies(keyed, [(q.a, q.b, q.c) for q in known])
    correct = [q.expected == answer for q, answer in zip(known, answers, strict=True)]
    semantic = [q.semantic for q in known]
    return AnalogyResult(
        n_questions=len(questions),
        n_evaluated=len(known),
        n_correct=sum(correct),
        n_semantic_correct=sum(c and s for c, s in zip(correct, semantic, strict=True)),
        n_semantic_evaluated=sum(semantic),
    )


def evaluate_similarity(
    keyed: KeyedVectors, pairs: list[tuple[str, str, float]] | None = None
) -> SimilarityResult:
    """Spearman correlation of cosine similarity with human scores, in-vocabulary pairs only."""
    pairs = read_word_pairs() if pairs is None else pairs
    known = [(x, y, s) for x, y, s in pairs if x in keyed.key_to_index and y in keyed.key_to_index]
    if len(known) < 2:
        return SimilarityResult(len(pairs), len(known), float("nan"))
    cosines = [float(keyed.similarity(x, y)) for x, y, _ in known]
    rho = spearmanr([s for _, _, s in known], cosines).statistic
    return SimilarityResult(len(pairs), len(known), float(rho))


def evaluate(keyed: KeyedVectors) -> dict[str, float]:
    """Analogy accuracy and WordSim-353 Spearman, each with its coverage."""
    analogies, similarity = evaluate_analogies(keyed), evaluate_similarity(keyed)
    return {
        "analogy_accuracy": analogies.accuracy,
        "analogy_semantic_accuracy": analogies.semantic_accuracy,
        "analogy_syntactic_accuracy": analogies.syntactic_accuracy,
        "analogy_coverage": analogies.coverage,
        "analogy_evaluated": analogies.n_evaluated,
        "wordsim_spearman": similarity.spearman,
        "wordsim_coverage": similarity.coverage,
        "wordsim_evaluated": similarity.n_evaluated,
    }
