"""Metrics of a RAG system: did retrieval find the gold passage, is the answer right and grounded.

Retrieval is scored per question against the set of gold chunk ids:

- recall@k -- did any gold chunk make the top ``k``;
- MRR@10 -- ``1 / rank`` of the first gold chunk (0 past rank 10), Voorhees, 1999,
  "The TREC-8 Question Answering Track Report";
- nDCG@10 -- discounted cumulative gain over the ideal ranking, Jarvelin & Kekalainen,
  2002, "Cumulated gain-based evaluation of IR techniques" (``sklearn.metrics.ndcg_score``).

Answers are scored against a gold answer with exact match and token F1 after
the normalisation of the SQuAD v1.1 evaluation script (Rajpurkar et al., 2016,
"SQuAD: 100,000+ Questions for Machine Comprehension of Text"): lower case, drop
punctuation and the articles a/an/the, collapse white space. Embedding
similarity (cosine of MiniLM vectors) forgives paraphrase that F1 punishes.
Groundedness is the share of answer sentences whose best cosine to a retrieved
passage clears a threshold (a cheap stand-in for the NLI check of Honovich et
al., 2022, "TRUE"). Every mean comes with a bootstrap 95% interval (Efron, 1979).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.metrics import ndcg_score

from dl2llm.rag.checks import citations, is_refusal, strip_markers

__all__ = ["is_refusal"]  # re-exported for the FAQ evaluation

SENTENCE = re.compile(r"(?<=[.!?])\s+")
GROUNDED_THRESHOLD = 0.5


def recall_at_k(ranked: Sequence[int], gold: set[int], k: int) -> float:
    """1.0 when any gold id is among the first ``k`` of ``ranked``, else 0.0."""
    return float(any(item in gold for item in ranked[:k]))


def reciprocal_rank(ranked: Sequence[int], gold: set[int], k: int = 10) -> float:
    """``1 / rank`` of the first gold id within the first ``k`` (ranks from 1), else 0."""
    for rank, item in enumerate(ranked[:k], start=1):
        if item in gold:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[int], gold: set[int], k: int = 10) -> float:
    """nDCG@k with binary relevance; gold ids that were not retrieved count in the ideal.

    The retrieved ids (padded with irrelevant slots to ``k``) get decreasing
    scores; missing gold ids are appended below them, so they never enter the
    top ``k`` but do enter the ideal ranking that normalises the gain.
    """
    top = list(ranked[:k])
    missing = [g for g in gold if g not in top]
    padding = [0.0] * (k - len(top))  # keeps the missing gold below rank k
    relevance = [float(item in gold) for item in top] + padding + [1.0] * len(missing)  # (n,)
    scores = np.arange(len(relevance), 0, -1, dtype=float)  # (n,) decreasing
    if not any(relevance):
        return 0.0
    return float(ndcg_score([relevance], [scores], k=k))


def normalize_answer(text: str) -> str:
    """SQuAD v1.1: lower case, remove punctuation, articles and extra white space."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised strings are equal."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD v1.1 token F1 of the normalised bags of words."""
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = Counter(predicted) & Counter(expected)
    shared = sum(common.values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(expected)
    return 2 * precision * recall / (precision + recall)


def strip_citations(text: str) -> str:
    """The answer without its ``【n】`` (or ``[n]``) markers."""
    return strip_markers(text)


def sentences(text: str) -> list[str]:
    """Non-empty sentences of ``text`` (citations removed)."""
    return [s for s in SENTENCE.split(strip_citations(text)) if len(s.split()) >= 2]


Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> (n, dim) unit vectors


def groundedness(
    answer: str, passages: Sequence[str], embed: Embed, threshold: float = GROUNDED_THRESHOLD
) -> float | None:
    """Share of the answer's sentences whose best cosine to a passage is ``>= threshold``.

    ``None`` when there is nothing to judge (no sentence or no passage).
    """
    claims = sentences(answer)
    if not claims or not passages:
        return None
    similarity = embed(claims) @ embed(passages).T  # (S, P)
    return float((similarity.max(axis=1) >= threshold).mean())


def citation_accuracy(answer: str, passage_is_gold: Sequence[bool]) -> float | None:
    """Share of the answer's citations ``[n]`` that point at a gold passage (1-based).

    A citation of a passage that was never shown counts as wrong; ``None``
    when the answer cites nothing.
    """
    cited = citations(answer)
    if not cited:
        return None
    right = [1 <= n <= len(passage_is_gold) and passage_is_gold[n - 1] for n in cited]
    return float(np.mean(right))


def embedding_similarity(prediction: str, gold: str, embed: Embed) -> float:
    """Cosine of the two texts' unit embeddings."""
    vectors = embed([strip_citations(prediction) or " ", gold])  # (2, dim)
    return float(vectors[0] @ vectors[1])


def latency_percentiles(milliseconds: Sequence[float]) -> dict[str, float]:
    """p50 and p95 of the latencies."""
    values = np.asarray(milliseconds, dtype=float)
    return {"p50_ms": float(np.percentile(values, 50)), "p95_ms": float(np.percentile(values, 95))}


def bootstrap_interval(
    values: Sequence[float], n_resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, float]:
    """Mean with its percentile-bootstrap interval (``low``, ``high``); ``None``s are skipped.

    With nothing to average, mean and interval are ``None`` (JSON ``null``).
    """
    data = np.asarray([v for v in values if v is not None], dtype=float)
    if data.size == 0:
        return {"mean": None, "low": None, "high": None, "n": 0}
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, (n_resamples, data.size))].mean(axis=1)  # (R,)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return {"mean": float(data.mean()), "low": float(low), "high": float(high), "n": int(data.size)}
