"""Latency of the RAG service's two stages: retrieval and answering.

Retrieval (query embedding + search) is timed for dense, BM25 and hybrid modes
at the corpus size and on a synthetic 100k-chunk index (the corpus vectors and
texts repeated, vectors jittered), one thread as in a service worker, with the
service's settings (questions embedded by ONNX Runtime, BM25 by ``bm25s``).
Answers (retrieval + SmolLM2 generating up to 128 new tokens, stopping after
two sentences; refusal disabled so every question generates) are timed end to
end. Baselines measured in the same run: the PyTorch (sentence-transformers)
query encoder for the ONNX one; ``rank_bm25``'s full scan (``get_scores`` over
every chunk) for ``bm25s``; a NumPy brute-force cosine for the FAISS flat
index; plain greedy decoding for prompt-lookup decoding (same tokens, checked).

Targets on 2 cores: retrieval p50 < 20 ms, answer p50 < 3 s.

Outputs: results/bench_rag.json. The benchmark's code: src/dl2llm/rag/benchmark.py.
"""

from __future__ import annotations

from dl2llm.rag.benchmark import RagBenchConfig, run_benchmark
from dl2llm.runtime import deliverable_parser, run_main, start_run

NAME = "bench_rag"


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    run = start_run(NAME, parser, argv)
    args = run.args
    config = RagBenchConfig.quick(args.seed) if args.quick else RagBenchConfig(seed=args.seed)
    metrics = run_benchmark(config)
    print(
        "\n".join(
            f"{k:>40}  {v:.4g}" if isinstance(v, float) else f"{k:>40}  {v}"
            for k, v in metrics.items()
        )
    )
    run.save(metrics, config={"quick": args.quick})
    return 0


if __name__ == "__main__":
    run_main(main)
