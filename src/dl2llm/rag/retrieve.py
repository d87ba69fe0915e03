"""Retrieval: dense, BM25, and their hybrid by reciprocal rank fusion.

Dense vectors match meaning ("memoize" finds ``functools.cache``); BM25 matches
rare exact terms (``EADDRINUSE``, ``__slots__``). Reciprocal rank fusion
(Cormack, Clarke & Buettcher, 2009, "Reciprocal Rank Fusion outperforms
Condorcet and individual Rank Learning Methods") combines the two rankings
without calibrating their scores against each other: a chunk at rank ``r`` in a
list earns ``1 / (60 + r)``, and the earnings are summed over the lists.

:meth:`Retriever.retrieve` is the one entry point the pipeline, the service and
the evaluation use: ``retrieve(question, k, mode) -> list[Hit]``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from dl2llm.rag.encoder import Encoder
from dl2llm.rag.ingest import Chunk

MODES = ("dense", "bm25", "hybrid")
RRF_K = 60
CANDIDATES = 50  # how deep each list goes before fusion


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk. ``score`` is a cosine (dense), BM25 score or RRF sum (hybrid)."""

    chunk_id: int
    doc_id: str
    path: str
    anchor: str
    title: str
    text: str
    score: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Retrieval:
    """Hits plus what the pipeline needs to decide whether to answer at all.

    ``confidence`` is the best dense cosine for the question, whatever the mode:
    unlike BM25 or RRF scores it is comparable across questions, so one
    calibrated threshold can tell answerable questions from the rest.
    """

    hits: list[Hit]
    confidence: float
    seconds: float
    mode: str = "hybrid"  # what ran: "bm25" while the dense index is being built


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], k: int = RRF_K
) -> list[tuple[int, float]]:
    """Fuse ranked id lists: ``score(d) = sum over lists of 1 / (k + rank(d))``, rank from 1.

    Ties keep the order in which ids were first seen.
    """
    scores: dict[int, float] = defaultdict(float)
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] += 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


class SearchIndex(Protocol):
    """What retrieval needs of an index: :class:`~dl2llm.rag.index.Index` (FAISS and BM25
    in this process) or :class:`~dl2llm.rag.milvus.MilvusIndex` (a Milvus collection)."""

    dense: bool  # False while only keywords can be searched (a first start's build)
    names: frozenset[str]  # every name the corpus mentions (the scope check)
    modules: frozenset[str]  # modules with a page of their own

    def search_dense(self, query_vectors: np.ndarray, n: int) -> list[list[tuple[int, float]]]:
        """For each query ``(Q, dim)`` the ``n`` nearest ``(chunk_id, cosine)`` pairs."""

    def search_keyword(self, question: str, n: int) -> list[tuple[int, float]]:
        """BM25: the ``n`` best ``(chunk_id, score)`` pairs."""

    def search_hybrid(
        self, question: str, query_vector: np.ndarray, n: int, depth: int
    ) -> list[tuple[int, float]]:
        """Dense and BM25 lists ``depth`` deep, fused by reciprocal rank: the ``n`` best."""

    def fetch(self, chunk_ids: Sequence[int]) -> dict[int, Chunk]:
        """``{chunk_id: chunk}`` for the ids that exist."""


class Retriever:
    """Questions in, ranked chunks out, over one :class:`SearchIndex`."""

    def __init__(self, index: SearchIndex, encoder: Encoder):
        self.index = index
        self.encoder = encoder

    def retrieve(self, question: str, k: int = 5, mode: str = "hybrid") -> list[Hit]:
        """The ``k`` best chunks for ``question`` by ``mode`` (dense, bm25 or hybrid)."""
        return self.search(question, k, mode).hits

    def search(self, question: str, k: int = 5, mode: str = "hybrid") -> Retrieval:
        """:meth:`retrieve` plus the dense confidence and the time it took."""
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode '{mode}' (use one of {', '.join(MODES)})")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        started = time.perf_counter()
        index = self.index  # read once: an edit may swap in a new index meanwhile
        query = self.encoder.encode_query(question)  # (1, dim)
        if not index.dense:
            return self._search_sparse_only(index, question, query, k, started)
        depth = max(k, CANDIDATES)
        dense = index.search_dense(query, depth)[0]
        confidence = dense[0][1] if dense else 0.0
        if mode == "dense":
            ranked = dense[:k]
        elif mode == "bm25":
            ranked = index.search_keyword(question, k)
        else:
            ranked = index.search_hybrid(question, query, k, depth)
        return Retrieval(hits_of(index, ranked), confidence, time.perf_counter() - started, mode)

    def _search_sparse_only(
        self, index: SearchIndex, question: str, query: np.ndarray, k: int, started: float
    ) -> Retrieval:
        """BM25 while the dense index is being built (a first start).

        The confidence is still a dense cosine -- the best between the question
        and the BM25 hits, embedded now -- so the calibrated refusal threshold
        keeps its meaning (it can only be lower than over the whole index).
        """
        hits = hits_of(index, index.search_keyword(question, k))
        texts = [f"{hit.title}\n{hit.text}" for hit in hits]
        confidence = float((self.encoder.encode(texts) @ query.T).max()) if texts else 0.0
        return Retrieval(hits, confidence, time.perf_counter() - started, "bm25")


def hits_of(index: SearchIndex, ranked: Sequence[tuple[int, float]]) -> list[Hit]:
    """The :class:`Hit` of each ranked ``(chunk_id, score)``, in order."""
    chunks = index.fetch([chunk_id for chunk_id, _ in ranked])
    found = [(chunks[i], score) for i, score in ranked if i in chunks]  # deleted meanwhile: out
    return [Hit(c.chunk_id, c.doc_id, c.path, c.anchor, c.title, c.text, s) for c, s in found]
