"""Benchmark: FAISS HNSW against exact (Flat) search at 100k vectors, single queries, 1 thread.

The vectors are the Python docs' chunk embeddings (all-MiniLM-L6-v2, cached by the vector
store lab) repeated with Gaussian jitter to 100k (see ``vector_store_demo``); queries are
jittered copies of held-out chunks, none of which is indexed. The HNSW graph is the lab's
default (``vectorstore.HNSW_M`` links, ``HNSW_EF_CONSTRUCTION``). Flat and HNSW are timed in
the same run; the speed-up is Flat's median single-query latency over HNSW's at the fastest
``efSearch`` whose recall@10 (against Flat) reaches the target.

Target: HNSW recall@10 >= 0.95 at >= 10x Flat's speed at 100k vectors.
Quick mode uses 300 chunks and 6,000 vectors (seconds, for CI); its numbers are not the target's.
"""

import numpy as np

from dl2llm import vectorstore
from dl2llm.rag.encoder import shared_encoder
from dl2llm.runtime import check_positive, deliverable_parser, run_main, start_run

RECALL_TARGET, SPEED_TARGET = 0.95, 10.0
NOISE = 0.025


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument("--vectors", type=check_positive, help="database size (default: by mode)")
    parser.add_argument("--queries", type=check_positive, default=300)
    run = start_run("bench_vectorstore", parser, argv)
    args = run.args
    n_vectors = args.vectors or (6_000 if args.quick else 100_000)
    chunks = vectorstore.corpus_chunks(300 if args.quick else None)
    encoder = shared_encoder()
    embeddings = vectorstore.embed_texts(
        [chunk.embedding_text() for chunk in chunks], encoder.encode, cache_name=encoder.path
    )
    rng = np.random.default_rng(args.seed)
    held_out = np.zeros(len(embeddings), dtype=bool)
    held_out[
        rng.choice(len(embeddings), min(args.queries, len(embeddings) // 5), replace=False)
    ] = True
    database = vectorstore.noisy_copies(embeddings[~held_out], n_vectors, NOISE, seed=args.seed)
    queries = vectorstore.noisy_copies(
        embeddings[held_out], args.queries, NOISE, seed=args.seed + 1
    )

    reports = vectorstore.compare_indexes(database, queries, kinds=("Flat", "HNSW"))
    flat = next(r for r in reports if r.kind == "Flat")
    hnsw = vectorstore.fastest_at_recall(reports, "HNSW", RECALL_TARGET)
    speedup = flat.p50_ms / hnsw.p50_ms
    met = hnsw.recall >= RECALL_TARGET and speedup >= SPEED_TARGET
    print(f"{n_vectors:,} vectors (real chunk embeddings + jitter sigma {NOISE}), "
          f"{len(queries)} single queries (jittered held-out chunks), 1 thread")  # fmt: skip
    for r in reports:
        print(f"  {r.description:<14} {r.row()['knob']:<14} p50 {r.p50_ms:7.3f} ms  "
              f"recall@10 {r.recall:.3f}")  # fmt: skip
    verdict = "met" if met else "MISSED"
    print(f"HNSW efSearch={hnsw.knob_value}: recall@10 {hnsw.recall:.3f}, {speedup:.1f}x Flat "
          f"(target recall >= {RECALL_TARGET} at >= {SPEED_TARGET}x): {verdict}")  # fmt: skip
    metrics = {
        "vectors": n_vectors,
        "hnsw_recall_at_10": round(hnsw.recall, 4),
        "hnsw_speedup_vs_flat": round(speedup, 1),
        "hnsw_ef_search": hnsw.knob_value,
        "flat_p50_ms": round(flat.p50_ms, 4),
        "hnsw_p50_ms": round(hnsw.p50_ms, 4),
        "hnsw_build_s": round(hnsw.build_s, 2),
        "target_met": met,
    }
    hnsw_shape = [vectorstore.HNSW_M, vectorstore.HNSW_EF_CONSTRUCTION]
    config = {"vectors": n_vectors, "queries": args.queries, "noise": NOISE, "hnsw": hnsw_shape}
    run.save(metrics, config=config)
    return 0


if __name__ == "__main__":
    run_main(main)
