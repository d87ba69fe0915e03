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
The measuring code: src/dl2llm/rag/vector_store_bench.py.
"""

from dataclasses import replace

from dl2llm.hardware import describe, machine_facts
from dl2llm.rag.retrieve import MODES
from dl2llm.rag.vector_store_bench import VectorStoreBenchConfig, compare_vector_stores
from dl2llm.runtime import deliverable_parser, run_main, start_run


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument(
        "--vectors", type=int, default=None, help="scale test size (full: 1M; 0 skips it)"
    )
    run = start_run("bench_vector_store", parser, argv)
    args = run.args
    facts = machine_facts()
    print(describe(facts))
    if args.quick:
        config = VectorStoreBenchConfig.quick(args.seed)
    else:
        config = VectorStoreBenchConfig(seed=args.seed)
    if args.vectors is not None:
        config = replace(config, vectors=args.vectors)
    metrics = compare_vector_stores(config)
    for mode in MODES:
        print(mode, metrics["corpus"][mode])
    for name, value in metrics.get("scale", {}).items():
        print(name, value)
    run.save(metrics, config={"quick": args.quick, "machine": facts, "vectors": config.vectors})
    return 0


if __name__ == "__main__":
    run_main(main)
