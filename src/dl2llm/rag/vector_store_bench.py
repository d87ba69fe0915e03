"""Milvus Lite against the embedded index (FAISS flat + bm25s): quality, latency, ingest, memory.

Two measurements, in one run:

1. **The corpus** (:func:`compare_on_questions`). The service's index of the Python docs is
   copied into a Milvus Lite collection (the same chunks and vectors: nothing is
   re-embedded), and every hand-written answerable question of the capstone evaluation is
   asked of both in each retrieval mode: top-10 overlap with FAISS flat, document recall@5
   of the gold documents (the retrieval quality the answers rest on), and p50/p95 search
   latency (question embedding excluded: it is the same).
2. **Scale** (:func:`scale`). Random unit vectors (1M in the full run) in a FAISS flat index
   and in Milvus Lite (FLAT, and HNSW M=16 ef=64): recall@10 against exact search, p50/p95
   latency of one query, ingest time, and the process's resident memory after each.

Baseline: the embedded index, measured in the same process and run.
``benchmarks/bench_vector_store.py`` runs it.
"""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from dl2llm.evaluation.questions import answerable
from dl2llm.rag import corpus_documents, default_data_dir, ensure_index, sample_documents
from dl2llm.rag.encoder import Encoder, shared_encoder
from dl2llm.rag.index import Index, build_index
from dl2llm.rag.milvus import MilvusIndex
from dl2llm.rag.retrieve import MODES, SearchIndex, hits_of

K, RECALL_AT = 10, 5
HYBRID_DEPTH = 50
SCALE_QUERIES = 50
BATCH = 10_000
HNSW = {"M": 16, "efConstruction": 64}
SEARCH_EF = 64


@dataclass
class VectorStoreBenchConfig:
    """The corpus and the scale test's size (``quick()``: the sample documents, 20k vectors)."""

    sample_corpus: bool = False  # index the sample documents instead of the Python docs
    vectors: int = 1_000_000  # random vectors of the scale test; 0 skips it
    seed: int = 0

    @classmethod
    def quick(cls, seed: int = 0) -> VectorStoreBenchConfig:
        return cls(sample_corpus=True, vectors=20_000, seed=seed)


def rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50 and p95 of ``seconds``, in milliseconds."""
    ms = sorted(1000 * s for s in seconds)
    return {"p50_ms": statistics.median(ms), "p95_ms": ms[int(0.95 * (len(ms) - 1))]}


def corpus_index(sample_corpus: bool, folder: str) -> tuple[Index, Encoder]:
    """The embedded index: of the sample documents in ``folder`` when ``sample_corpus``, else
    the service's cached index of the Python docs; and its (ONNX query) encoder."""
    encoder = shared_encoder(None, True)
    if sample_corpus:
        documents, source = sample_documents()
        return build_index(documents, folder, encoder, source=source, progress=False), encoder
    return ensure_index(default_data_dir(), encoder), encoder


def copy_to_milvus(index: Index, encoder: Encoder, uri: str) -> tuple[MilvusIndex, float]:
    """The same documents in a Milvus Lite collection at ``uri`` (reusing ``index``'s
    vectors), and the seconds the copy took."""
    documents, source = sample_documents() if len(index) < 1000 else corpus_documents()
    started = time.perf_counter()
    milvus = MilvusIndex(uri, encoder.dim)
    milvus.fill(documents, encoder, source, progress=False, known=index.vectors_by_text())
    return milvus, time.perf_counter() - started


def search(
    backend: SearchIndex, mode: str, question: str, vector: np.ndarray
) -> list[tuple[int, float]]:
    """The ``K`` best ``(chunk_id, score)`` pairs of one retrieval ``mode``."""
    if mode == "dense":
        return backend.search_dense(vector, K)[0]
    if mode == "bm25":
        return backend.search_keyword(question, K)
    return backend.search_hybrid(question, vector, K, HYBRID_DEPTH)


def compare_on_questions(index: Index, milvus: MilvusIndex, encoder: Encoder) -> dict[str, Any]:
    """Per mode: top-10 overlap, recall@5 of the gold documents and latency of both stores."""
    questions = answerable()
    vectors = encoder.encode([q.question for q in questions])  # (Q, dim), shared by both
    results: dict[str, Any] = {"questions": len(questions)}
    for mode in MODES:
        per_backend = {}
        for name, backend in (("faiss", index), ("milvus", milvus)):
            seconds, found, recalled = [], [], []
            for question, vector in zip(questions, vectors, strict=True):
                started = time.perf_counter()
                ranked = search(backend, mode, question.question, vector[None, :])
                seconds.append(time.perf_counter() - started)
                hits = hits_of(backend, ranked)
                found.append([(h.doc_id, h.anchor, h.text) for h in hits])
                recalled.append(any(h.doc_id in question.gold_docs for h in hits[:RECALL_AT]))
            per_backend[name] = (found, float(np.mean(recalled)), percentiles(seconds))
        faiss_found, milvus_found = per_backend["faiss"][0], per_backend["milvus"][0]
        overlap = [
            len(set(a) & set(b)) / len(a) if a else float(not b)
            for a, b in zip(faiss_found, milvus_found, strict=True)
        ]
        results[mode] = {
            "top10_overlap": float(np.mean(overlap)),
            **{f"{name}_recall@{RECALL_AT}": value[1] for name, value in per_backend.items()},
            **{
                f"{name}_{k}": v for name, value in per_backend.items() for k, v in value[2].items()
            },
        }
    return results


def faiss_flat_scale(data: np.ndarray, queries: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """Ingest, single-query latency and memory of FAISS flat; and the exact top ``K`` ids."""
    import faiss

    started, memory = time.perf_counter(), rss_mib()
    flat = faiss.IndexFlatIP(data.shape[1])
    flat.add(data)
    row = {"ingest_s": time.perf_counter() - started}
    exact = flat.search(queries, K)[1]  # (Q, K) the truth
    seconds = []
    for query in queries:
        started = time.perf_counter()
        flat.search(query[None, :], K)
        seconds.append(time.perf_counter() - started)
    row |= percentiles(seconds) | {"recall@10": 1.0, "peak_rss_mib": rss_mib()}
    row["rss_growth_mib"] = rss_mib() - memory
    return row, exact


def milvus_scale(
    data: np.ndarray, queries: np.ndarray, exact: np.ndarray, index_type: str, uri: str
) -> dict[str, float]:
    """Ingest, single-query latency, recall@10 and memory of a Milvus Lite ``index_type``."""
    from pymilvus import DataType, MilvusClient

    n, dim = data.shape
    client = MilvusClient(uri)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    indexes = client.prepare_index_params()
    params = HNSW if index_type == "HNSW" else {}
    indexes.add_index("vector", index_type=index_type, metric_type="IP", params=params)
    client.create_collection("scale", schema=schema, index_params=indexes)
    memory, started = rss_mib(), time.perf_counter()
    for start in range(0, n, BATCH):
        rows = [{"id": i, "vector": data[i].tolist()} for i in range(start, min(n, start + BATCH))]
        client.insert("scale", rows)
    client.flush("scale")
    client.load_collection("scale")
    ingest = time.perf_counter() - started
    seconds, recalls = [], []
    search_params = {"metric_type": "IP", "params": {"ef": SEARCH_EF}}
    for query, truth in zip(queries, exact, strict=True):
        started = time.perf_counter()
        hits = client.search("scale", [query.tolist()], limit=K, search_params=search_params)
        seconds.append(time.perf_counter() - started)
        recalls.append(len({h["id"] for h in hits[0]} & set(truth.tolist())) / K)
    row = {
        "ingest_s": ingest,
        **percentiles(seconds),
        "recall@10": float(np.mean(recalls)),
        "peak_rss_mib": rss_mib(),
        "rss_growth_mib": rss_mib() - memory,
    }
    client.close()
    return row


def scale(n: int, dim: int, folder: str, seed: int) -> dict[str, Any]:
    """``n`` random unit vectors: FAISS flat against Milvus Lite FLAT and HNSW."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, dim), dtype=np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    queries = data[rng.choice(n, SCALE_QUERIES, replace=False)] + 0.1 * rng.standard_normal(
        (SCALE_QUERIES, dim), dtype=np.float32
    )
    results: dict[str, Any] = {"vectors": n, "dim": dim}
    results["faiss_flat"], exact = faiss_flat_scale(data, queries)
    for index_type in ("FLAT", "HNSW"):
        uri = f"{folder}/scale-{index_type}.db"
        results[f"milvus_lite_{index_type.lower()}"] = milvus_scale(
            data, queries, exact, index_type, uri
        )
    return results


def compare_vector_stores(config: VectorStoreBenchConfig) -> dict[str, Any]:
    """Both measurements (the scale one skipped when ``config.vectors`` is 0): the metrics."""
    with tempfile.TemporaryDirectory(prefix="dl2llm-vector-store-") as folder:
        index, encoder = corpus_index(config.sample_corpus, f"{folder}/faiss")
        milvus, ingest_s = copy_to_milvus(index, encoder, f"{folder}/corpus.db")
        metrics = {"corpus_chunks": len(index), "milvus_corpus_ingest_s": ingest_s}
        metrics["corpus"] = compare_on_questions(index, milvus, encoder)
        milvus.close()
        if config.vectors:
            metrics["scale"] = scale(config.vectors, encoder.dim, folder, config.seed)
    return metrics
