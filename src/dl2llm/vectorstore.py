"""Vector stores: finding the nearest embeddings fast, exactly or approximately, with FAISS.

Retrieval embeds every passage once and, for each question, looks for the passages whose
vectors are closest to the question's. With unit-length vectors (all-MiniLM-L6-v2 output)
the inner product is the cosine similarity, so "closest" means "largest inner product".
FAISS (Johnson, Douze & Jégou, 2019, "Billion-scale similarity search with GPUs", IEEE
Trans. Big Data) offers the standard index structures:

- **Flat** -- exact brute force: every query is compared with all ``N`` vectors
  (``N * d`` multiply-adds). The ground truth the others are measured against.
- **IVF** (inverted file; Sivic & Zisserman, 2003, "Video Google"; Jégou et al., 2011) --
  k-means splits the vectors into ``nlist`` cells; a query scans only the ``nprobe`` cells
  whose centroids are nearest. Speed for recall, tuned by ``nprobe``.
- **HNSW** (Malkov & Yashunin, 2020, "Efficient and robust approximate nearest neighbor
  search using Hierarchical Navigable Small World graphs", IEEE TPAMI) -- a layered graph
  in which each vector links to ``M`` neighbours; a query walks greedily from the top
  layer down, keeping ``efSearch`` candidates. Fast and accurate, but memory-hungry.
- **IVF-PQ** (Jégou, Douze & Schmid, 2011, "Product Quantization for Nearest Neighbor
  Search", IEEE TPAMI) -- IVF whose vectors are compressed: each is cut into ``m``
  sub-vectors, each replaced by the id of its nearest of 256 sub-centroids, so a 384-d
  float vector (1,536 bytes) becomes ``m = 48`` bytes. Smallest, and the least accurate.

An approximate index is judged by **recall@k**: the share of the exact top-k (from Flat)
that it also returns, averaged over queries -- always against its latency, because any
index can trade one for the other. Single-query latency is measured with one OpenMP
thread, which is how a service answering one question at a time runs (and faster here).

Metadata filtering ("only the tutorial") uses FAISS' ``IDSelector``: the index skips
vectors whose id is not in the allowed set while it searches, so the top-k are the
nearest *allowed* vectors rather than a post-filtered, possibly short, list.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from dl2llm import paths
from dl2llm.efficiency.latency import latency_of
from dl2llm.io import atomic_write_bytes
from dl2llm.runtime import UsageError

if TYPE_CHECKING:
    from dl2llm.rag.ingest import Chunk

K = 10
PQ_SUBVECTOR_DIM = 8  # IVF-PQ cuts a vector into d / 8 pieces of 8 numbers, 1 byte each
TRAIN_SAMPLE = 16_384  # k-means (IVF cells, PQ codebooks) trains on at most this many vectors
INDEX_KINDS = ("Flat", "IVF", "HNSW", "IVF-PQ")
HNSW_M = 32  # graph links per vector (FAISS keeps 2M on the bottom layer)
HNSW_EF_CONSTRUCTION = 80  # candidates kept while inserting a vector (FAISS' default: 40)
# The knob each approximate index trades recall for speed with, and the values we sweep.
SEARCH_KNOBS: dict[str, tuple[str, tuple[int, ...]]] = {
    "IVF": ("nprobe", (1, 2, 4, 8, 16, 32, 64)),
    "HNSW": ("efSearch", (16, 32, 64, 128, 256, 512)),
    "IVF-PQ": ("nprobe", (1, 2, 4, 8, 16, 32, 64)),
}


# --------------------------------------------------------------------------------------------
# The corpus: chunks of the Python docs and their (cached) embeddings
# --------------------------------------------------------------------------------------------


def corpus_chunks(limit: int | None = None) -> list[Chunk]:
    """Deduplicated section chunks of the capstone corpus (via :mod:`dl2llm.rag.ingest`).

    With ``limit``, an evenly spaced selection of about that many chunks from evenly spaced
    documents (every part of the docs stays represented, and little is parsed).
    """
    from dl2llm.rag import corpus_documents
    from dl2llm.rag.ingest import chunk_document, deduplicate

    documents, _ = corpus_documents()
    if limit is not None:  # about ten chunks from each of evenly spaced documents
        documents = documents[:: max(1, len(documents) * 10 // limit)]
    chunks = list(deduplicate(c for d in documents for c in chunk_document(d)))
    if limit is None or limit >= len(chunks):
        return chunks
    picks = np.linspace(0, len(chunks) - 1, limit).round().astype(int)
    return [chunks[i] for i in picks]


def section_of(chunk: Chunk) -> str:
    """The top-level part of the docs a chunk comes from (``library``, ``tutorial``, ...)."""
    return chunk.doc_id.split("/")[0] if "/" in chunk.doc_id else "top"


def embed_texts(
    texts: Sequence[str], encode: Callable[[Sequence[str]], np.ndarray], cache_name: str
) -> np.ndarray:
    """``(N, d)`` float32 embeddings, cached as ``<DL2LLM_HOME>/vectorstore/<hash>.npy``.

    The file name hashes the texts and ``cache_name`` (the encoder), so a changed corpus or
    encoder never reuses stale vectors; the write is atomic.
    """
    digest = hashlib.sha256(cache_name.encode())
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    path = paths.home() / "vectorstore" / f"{digest.hexdigest()[:24]}.npy"
    if path.is_file():
        return np.load(path)
    vectors = np.ascontiguousarray(encode(texts), dtype=np.float32)
    buffer = io.BytesIO()
    np.save(buffer, vectors)
    atomic_write_bytes(path, buffer.getvalue())
    return vectors


def noisy_copies(base: np.ndarray, n: int, noise: float, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors made by repeating ``base`` rows plus Gaussian noise, re-normalised.

    Used to scale a real corpus up: each copy keeps its source's neighbourhood (a cosine
    of about ``1 / sqrt(1 + noise**2 * d)`` to it) without being an exact duplicate.
    """
    rng = np.random.default_rng(seed)
    rows = base[np.arange(n) % len(base)]  # (n, d)
    copies = rows + rng.normal(0.0, noise, size=rows.shape).astype(np.float32)
    return normalise(copies)


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32, C-contiguous, as FAISS wants)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


# --------------------------------------------------------------------------------------------
# Building, measuring and sweeping indexes
# --------------------------------------------------------------------------------------------


def pq_bits(n: int) -> int:
    """Bits per PQ code: 8 (256 sub-centroids) once there are enough vectors to train them.

    k-means wants about 39 points per centroid; below ``39 * 256`` vectors we use 4 bits
    (16 sub-centroids) instead of training 256 centroids on too few points.
    """
    return 8 if n >= 39 * 256 else 4


def factory_string(kind: str, n: int, dim: int) -> str:
    """The FAISS ``index_factory`` description of ``kind`` sized for ``n`` vectors."""
    nlist = max(4, int(round(np.sqrt(n))))  # cells of ~sqrt(N) vectors each
    pq_m = dim // PQ_SUBVECTOR_DIM
    strings = {
        "Flat": "Flat",
        "IVF": f"IVF{nlist},Flat",
        "HNSW": f"HNSW{HNSW_M}",
        "IVF-PQ": f"IVF{nlist},PQ{pq_m}x{pq_bits(n)}np",  # np: no polysemous training (slow)
    }
    if kind not in strings:
        raise UsageError(f"unknown index kind '{kind}' (known: {', '.join(INDEX_KINDS)})")
    return strings[kind]


def build(
    kind: str,
    vectors: np.ndarray,
    hnsw_m: int = HNSW_M,
    ef_construction: int = HNSW_EF_CONSTRUCTION,
):
    """A trained FAISS index of ``kind`` holding ``vectors`` ``(N, d)`` (inner product).

    Indexes that learn (IVF's cells, PQ's codebooks) train on a seeded random sample of at
    most ``TRAIN_SAMPLE`` vectors: k-means needs tens of points per centroid, not all of them.
    An HNSW graph links each vector to ``hnsw_m`` neighbours found with ``ef_construction``
    candidates: larger values cost build time and memory and buy recall at a given speed.
    """
    import faiss

    n, dim = vectors.shape
    if kind == "IVF-PQ" and n < 2 ** pq_bits(n):
        raise UsageError(f"IVF-PQ needs at least {2 ** pq_bits(n)} vectors to train, got {n}")
    if kind == "IVF-PQ" and dim % PQ_SUBVECTOR_DIM:
        raise UsageError(f"IVF-PQ needs a dimension divisible by {PQ_SUBVECTOR_DIM}, got {dim}")
    description = factory_string(kind, n, dim)
    if kind == "HNSW":
        description = f"HNSW{hnsw_m}"
    index = faiss.index_factory(dim, description, faiss.METRIC_INNER_PRODUCT)
    if kind == "HNSW":
        index.hnsw.efConstruction = ef_construction
    if not index.is_trained:
        sample = np.random.default_rng(0).permutation(n)[:TRAIN_SAMPLE]
        index.train(vectors[np.sort(sample)])
    index.add(vectors)
    return index


def index_bytes(index) -> int:
    """Size of the index when serialised: its memory footprint, give or take a header."""
    import faiss

    return int(faiss.serialize_index(index).nbytes)


def set_knob(index, name: str, value: int) -> None:
    """Set a search-time parameter (``nprobe``, ``efSearch``) on a factory-built index."""
    import faiss

    faiss.ParameterSpace().set_index_parameter(index, name, value)


def search_one_at_a_time(index, queries: np.ndarray, k: int = K) -> tuple[np.ndarray, list]:
    """Ids ``(Q, k)`` of the nearest vectors, one query per call; returns per-query seconds."""
    found, seconds = np.empty((len(queries), k), dtype=np.int64), []
    for row, query in enumerate(queries):
        started = time.perf_counter()
        _, ids = index.search(query[None, :], k)  # (1, k)
        seconds.append(time.perf_counter() - started)
        found[row] = ids[0]
    return found, seconds


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = K) -> float:
    """Mean share of each query's true top-``k`` ids that appear in its found top-``k``."""
    if found.shape[0] != truth.shape[0]:
        raise UsageError(f"{found.shape[0]} result rows for {truth.shape[0]} queries")
    hits = [
        len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits) / k)


@dataclass(frozen=True)
class IndexReport:
    """One index at one search setting: cost to build and keep, speed and recall."""

    kind: str
    description: str
    knob: str
    knob_value: int | None
    build_s: float
    size_mb: float
    p50_ms: float
    p95_ms: float
    recall: float

    def row(self) -> dict:
        return {
            "kind": self.kind,
            "index": self.description,
            "knob": f"{self.knob}={self.knob_value}" if self.knob else "",
            "build_s": round(self.build_s, 3),
            "size_mb": round(self.size_mb, 2),
            "p50_ms": round(self.p50_ms, 4),
            "p95_ms": round(self.p95_ms, 4),
            f"recall_at_{K}": round(self.recall, 4),
        }


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    """The true top-``k`` ids ``(Q, k)`` by brute force (a Flat index, batched)."""
    _, ids = build("Flat", vectors).search(queries, k)
    return ids


def knob_sweep(
    index, kind: str, description: str, build_s: float, queries: np.ndarray, truth: np.ndarray
) -> list[IndexReport]:
    """Single-query latency and recall@10 of a built ``index`` at each value of its knob.

    Searches run with one OpenMP thread (the caller's thread count is restored after).
    """
    import faiss

    knob, values = SEARCH_KNOBS.get(kind, ("", (None,)))
    size_mb = index_bytes(index) / 2**20
    reports = []
    previous_threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        for value in values:
            if knob:
                set_knob(index, knob, value)
            found, seconds = search_one_at_a_time(index, queries)
            latency = latency_of(seconds, batch_size=1)
            reports.append(
                IndexReport(
                    kind,
                    description,
                    knob,
                    value,
                    build_s,
                    size_mb,
                    latency.p50_ms,
                    latency.p95_ms,
                    recall_at_k(found, truth),
                )
            )
    finally:
        faiss.omp_set_num_threads(previous_threads)
    return reports


def compare_indexes(
    vectors: np.ndarray,
    queries: np.ndarray,
    kinds: Iterable[str] = INDEX_KINDS,
    progress: bool = True,
) -> list[IndexReport]:
    """Build each kind, then time single queries and measure recall@10 at every knob value."""
    truth = exact_neighbours(vectors, queries)
    reports = []
    for kind in tqdm(list(kinds), desc="indexes", disable=not progress):
        started = time.perf_counter()
        index = build(kind, vectors)
        build_s = time.perf_counter() - started
        description = factory_string(kind, len(vectors), vectors.shape[1])
        if kind == "HNSW":
            description += f",efC{HNSW_EF_CONSTRUCTION}"
        reports += knob_sweep(index, kind, description, build_s, queries, truth)
    return reports


def tune_hnsw(
    vectors: np.ndarray,
    queries: np.ndarray,
    settings: Iterable[tuple[int, int]],
    progress: bool = True,
) -> list[IndexReport]:
    """The ``efSearch`` sweep of an HNSW graph built with each ``(M, efConstruction)``."""
    truth = exact_neighbours(vectors, queries)
    reports = []
    for m, ef_construction in tqdm(list(settings), desc="HNSW graphs", disable=not progress):
        started = time.perf_counter()
        index = build("HNSW", vectors, hnsw_m=m, ef_construction=ef_construction)
        build_s = time.perf_counter() - started
        description = f"HNSW{m},efC{ef_construction}"
        reports += knob_sweep(index, "HNSW", description, build_s, queries, truth)
    return reports


def fastest_at_recall(reports: Sequence[IndexReport], kind: str, target: float) -> IndexReport:
    """The quickest setting of ``kind`` reaching ``target`` recall (else its most accurate)."""
    candidates = [r for r in reports if r.kind == kind]
    good = [r for r in candidates if r.recall >= target]
    if good:
        return min(good, key=lambda r: r.p50_ms)
    return max(candidates, key=lambda r: (r.recall, -r.p50_ms))


def plot_recall_latency(panels: dict[str, Sequence[IndexReport]], path: str | Path) -> Path:
    """Recall@10 against single-query p50 latency, one panel per dataset, one line per kind."""
    from dl2llm.plots import plt, save_figure

    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, (title, reports) in zip(axes[0], panels.items(), strict=True):
        for kind in INDEX_KINDS:
            points = [r for r in reports if r.kind == kind]
            if points:
                style = "*" if kind == "Flat" else "o-"
                ax.plot([r.p50_ms for r in points], [r.recall for r in points], style, label=kind)
        ax.set(xscale="log", xlabel="single-query p50 latency (ms, 1 thread)", title=title)
        ax.set(ylabel=f"recall@{K} vs Flat", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path)


# --------------------------------------------------------------------------------------------
# Keeping an index: save and load, ids and metadata filters
# --------------------------------------------------------------------------------------------


def save_index(index, path: str | Path) -> Path:
    """Write ``index`` to ``path`` atomically (serialise, then temp file + rename)."""
    import faiss

    return atomic_write_bytes(path, faiss.serialize_index(index).tobytes())


def load_index(path: str | Path):
    """Read an index written by :func:`save_index`."""
    import faiss

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no FAISS index at {path}")
    return faiss.read_index(str(path))


def with_ids(index, vectors: np.ndarray, ids: np.ndarray):
    """Wrap an empty, trained ``index`` so that it stores ``vectors`` under our ``ids``."""
    import faiss

    mapped = faiss.IndexIDMap2(index)
    mapped.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
    return mapped


def ids_where(metadata: Sequence[dict], **conditions) -> np.ndarray:
    """Row ids whose metadata has every ``key=value`` in ``conditions``."""
    return np.array(
        [
            i
            for i, meta in enumerate(metadata)
            if all(meta.get(k) == v for k, v in conditions.items())
        ],
        dtype=np.int64,
    )


def filtered_search(
    index, queries: np.ndarray, allowed_ids: np.ndarray, k: int = K
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and ids ``(Q, k)`` of the nearest vectors among ``allowed_ids`` only.

    FAISS skips the other ids during the search (``IDSelectorBatch``); missing results,
    when fewer than ``k`` ids are allowed, are ``-1``.
    """
    import faiss

    selector = faiss.IDSelectorBatch(np.asarray(allowed_ids, dtype=np.int64))
    return index.search(queries, k, params=faiss.SearchParameters(sel=selector))
