"""Vocabulary, frequent-word subsampling and the negative-sampling noise distribution.

Mikolov et al., "Distributed Representations of Words and Phrases and their
Compositionality" (NeurIPS 2013), add two tricks to skip-gram that both depend
only on word counts:

- **Subsampling of frequent words.** "the" co-occurs with everything and teaches
  little, so each occurrence of a word with corpus frequency ``f`` is kept with
  probability ``(sqrt(f / t) + 1) * t / f`` (capped at 1), where ``t`` is the
  ``sample`` threshold (1e-3). This is the formula of the released word2vec C
  code and gensim; the paper prints the simpler discard probability
  ``1 - sqrt(t / f)``. Words rarer than about ``t`` are always kept.
- **Noise distribution.** Negative words are drawn from the unigram
  distribution raised to the power 3/4, ``P(w) ~ count(w) ** 0.75``, which
  flattens it: rare words are drawn more often than their frequency.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from dl2llm.runtime import UsageError

NOISE_EXPONENT = 0.75


@dataclass(frozen=True)
class Vocabulary:
    """Words kept for training, most frequent first, with their counts."""

    words: list[str]
    counts: np.ndarray  # (V,) int64

    def __len__(self) -> int:
        return len(self.words)

    @property
    def index(self) -> dict[str, int]:
        return {word: i for i, word in enumerate(self.words)}


@dataclass(frozen=True)
class EncodedCorpus:
    """The corpus as one flat array of word ids plus the sentence each token is in.

    Out-of-vocabulary tokens are removed before windows are formed (as in
    word2vec), so context windows never straddle two sentences but do reach
    past dropped rare words.
    """

    ids: np.ndarray  # (N,) int64 word ids
    sentence_ids: np.ndarray  # (N,) int64, non-decreasing


def build_vocabulary(sentences: list[list[str]], min_count: int = 5) -> Vocabulary:
    """Words occurring at least ``min_count`` times, by descending count (ties: first seen)."""
    if min_count < 1:
        raise UsageError(f"min_count must be at least 1, got {min_count}")
    counter = Counter(word for sentence in sentences for word in sentence)
    kept = [(word, n) for word, n in counter.items() if n >= min_count]
    if not kept:
        raise UsageError(f"no word occurs {min_count} or more times: the corpus is too small")
    kept.sort(key=lambda item: -item[1])
    return Vocabulary([w for w, _ in kept], np.array([n for _, n in kept], dtype=np.int64))


def encode_corpus(sentences: list[list[str]], vocab: Vocabulary) -> EncodedCorpus:
    """Map tokens to ids, dropping out-of-vocabulary tokens."""
    index = vocab.index
    ids, sentence_ids = [], []
    for s, sentence in enumerate(sentences):
        known = [index[word] for word in sentence if word in index]
        ids.extend(known)
        sentence_ids.extend([s] * len(known))
    return EncodedCorpus(np.array(ids, dtype=np.int64), np.array(sentence_ids, dtype=np.int64))


def keep_probabilities(counts: np.ndarray, sample: float = 1e-3) -> np.ndarray:
    """Per-word probability of keeping one occurrence under frequent-word subsampling.

    ``sample <= 0`` switches subsampling off (every word kept).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts)
    threshold = sample * counts.sum()  # t * total, so f / t == count / threshold
    keep = (np.sqrt(counts / threshold) + 1.0) * threshold / counts
    return np.minimum(keep, 1.0)


def noise_distribution(counts: np.ndarray, exponent: float = NOISE_EXPONENT) -> np.ndarray:
    """The negative-sampling distribution ``count ** exponent``, normalised to sum to 1."""
    weights = np.asarray(counts, dtype=np.float64) ** exponent
    return weights / weights.sum()


def subsample(corpus: EncodedCorpus, keep: np.ndarray, rng: np.random.Generator) -> EncodedCorpus:
    """Drop each token independently with probability ``1 - keep[word]``."""
    mask = rng.random(len(corpus.ids)) < keep[corpus.ids]
    return EncodedCorpus(corpus.ids[mask], corpus.sentence_ids[mask])
