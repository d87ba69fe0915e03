"""Milvus Lite against the embedded index (FAISS flat + bm25s): quality, latency, ingest, memory.

Two measurements, in one run:

1. **The corpus.** The service's index of the Python docs is copied into a
   Milvus Lite collection (the same chunks and vectors: nothing is re-embedded),
   and every hand-written answerable question of the capstone evaluation is
   asked of both in each mode: top-10 overlap with FAISS flat, document
   recall@5 of the gold documents (the retrieval quality the answers rest on),
   and p50/p95 search latency (question embedding excluded: it is the same).
2. **Scale.** ``--vectors`` random unit vectors (1M in the full run) in a FAISS
   flat index and in Milvus Lite (FLAT, and HNSW M=16 ef=64): recall@10 against
   exact search, p50/p95 latency of one query, ingest time, and the process's
   resident memory after each.

Baseline: the embedded index, measured in the same process and run.
"""

import resource
import statistics
import tempfile
import time

import numpy as np

from dl2llm.evaluation.questions import answerable
from dl2llm.hardware import describe, machine_facts
from dl2llm.rag import default_data_dir, ensure_index, sample_documents
from dl2llm.rag.index import Index, build_index, shared_encoder
from dl2llm.rag.milvus import MilvusIndex
from dl2llm.rag.retrieve import MODES, hits_of
from dl2llm.results import save_results
from dl2llm.runtime import deliverable_parser, run_main, set_seed

NAME = "bench_vector_store"
K, RECALL_AT = 10, 5
SCALE_QUERIES = 50
BATCH = 10_000


def rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in seconds)
    return {"p50_ms": statistics.median(ms), "p95_ms": ms[int(0.95 * (len(ms) - 1))]}


def corpus_index(quick: bool, folder: str):
    encoder = shared_encoder(None, True)
    if quick:
        documents, source = sample_documents()
        return build_index(documents, folder, encoder, source=source, progress=False), encoder
    return ensure_index(default_data_dir(), encoder), encoder


def copy_to_milvus(index: Index, encoder, uri: str) -> tuple[MilvusIndex, float]:
    from dl2llm.rag import corpus_documents

    documents, source = sample_documents() if len(index) < 1000 else corpus_documents()
    started = time.perf_counter()
    milvus = MilvusIndex(uri, encoder.dim)
    milvus.fill(documents, encoder, source, progress=False, known=index.vectors_by_text())
    return milvus, time.perf_counter() - started


def compare_on_questions(index: Index, milvus: MilvusIndex, encoder) -> dict:
    questions = answerable()
    vectors = encoder.encode([q.question for q in questions])  # (Q, dim), shared by both
    results: dict = {"questions": len(questions)}
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


def search(backend, mode: str, question: str, vector: np.ndarray) -> list[tuple[int, float]]:
    if mode == "dense":
        return backend.search_dense(vector, K)[0]
    if mode == "bm25":
        return backend.search_keyword(question, K)
    return backend.search_hybrid(question, vector, K, 50)


def scale(n: int, dim: int, folder: str, seed: int) -> dict:
    """Random unit vectors: FAISS flat vs Milvus Lite FLAT and HNSW."""
    import faiss
    from pymilvus import DataType, MilvusClient

    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, dim), dtype=np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    queries = data[rng.choice(n, SCALE_QUERIES, replace=False)] + 0.1 * rng.standard_normal(
        (SCALE_QUERIES, dim), dtype=np.float32
    )
    results: dict = {"vectors": n, "dim": dim}
    started, memory = time.perf_counter(), rss_mib()
    flat = faiss.IndexFlatIP(dim)
    flat.add(data)
    results["faiss_flat"] = {"ingest_s": time.perf_counter() - started}
    exact = flat.search(queries, K)[1]  # (Q, K) the truth
    seconds = []
    for query in queries:
        started = time.perf_counter()
        flat.search(query[None, :], K)
        seconds.append(time.perf_counter() - started)
    results["faiss_flat"] |= percentiles(seconds) | {"recall@10": 1.0, "peak_rss_mib": rss_mib()}
    results["faiss_flat"]["rss_growth_mib"] = rss_mib() - memory
    for index_type, params in (("FLAT", {}), ("HNSW", {"M": 16, "efConstruction": 64})):
        client = MilvusClient(f"{folder}/scale-{index_type}.db")
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        indexes = client.prepare_index_params()
        indexes.add_index("vector", index_type=index_type, metric_type="IP", params=params)
        client.create_collection("scale", schema=schema, index_params=indexes)
        memory, started = rss_mib(), time.perf_counter()
        for start in range(0, n, BATCH):
            rows = [
                {"id": i, "vector": data[i].tolist()} for i in range(start, min(n, start + BATCH))
            ]
            client.insert("scale", rows)
        client.flush("scale")
        client.load_collection("scale")
        ingest = time.perf_counter() - started
        seconds, recalls = [], []
        search_params = {"metric_type": "IP", "params": {"ef": 64}}
        for query, truth in zip(queries, exact, strict=True):
            started = time.perf_counter()
            hits = client.search("scale", [query.tolist()], limit=K, search_params=search_params)
            seconds.append(time.perf_counter() - started)
            recalls.append(len({h["id"] for h in hits[0]} & set(truth.tolist())) / K)
        results[f"milvus_lite_{index_type.lower()}"] = {
            "ingest_s": ingest,
            **percentiles(seconds),
            "recall@10": float(np.mean(recalls)),
            "peak_rss_mib": rss_mib(),
            "rss_growth_mib": rss_mib() - memory,
        }
        client.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument(
        "--vectors", type=int, default=None, help="scale test size (full: 1M; 0 skips it)"
    )
    args = parser.parse_args(argv)
    set_seed(args.seed)
    facts = machine_facts()
    print(describe(facts))
    started = time.perf_counter()
    n = args.vectors if args.vectors is not None else (20_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="dl2llm-vector-store-") as folder:
        index, encoder = corpus_index(args.quick, f"{folder}/faiss")
        milvus, ingest_s = copy_to_milvus(index, encoder, f"{folder}/corpus.db")
        metrics = {"corpus_chunks": len(index), "milvus_corpus_ingest_s": ingest_s}
        metrics["corpus"] = compare_on_questions(index, milvus, encoder)
        milvus.close()
        if n:
            metrics["scale"] = scale(n, encoder.dim, folder, args.seed)
    for mode in MODES:
        print(mode, metrics["corpus"][mode])
    for name, value in metrics.get("scale", {}).items():
        print(name, value)
    save_results(
        NAME,
        metrics,
        out_dir=args.out,
        config={"quick": args.quick, "machine": facts, "vectors": n},
        seed=args.seed,
        quick=args.quick,
        started=started,
    )
    return 0


if __name__ == "__main__":
    run_main(main)
