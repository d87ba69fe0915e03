"""Latency of the RAG service's two stages, retrieval and answering (``benchmarks/bench_rag.py``).

:func:`run_benchmark` times, with the service's settings and one thread as in a worker:

- the question encoder: ONNX Runtime against sentence-transformers (:func:`bench_query_encoder`);
- retrieval in every mode at the corpus size and on a synthetic larger index
  (:func:`scaled_index`), with baselines for its two searches: ``rank_bm25``'s full scan
  for ``bm25s`` and a NumPy brute-force cosine for the FAISS flat index
  (:func:`bench_retrieval`, :func:`bench_baselines`);
- answers end to end with prompt-lookup decoding, against plain greedy decoding
  (:func:`bench_answers`), and checks the latency targets.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from dl2llm.rag import build_index, default_data_dir, ensure_index, load_pipeline, sample_documents
from dl2llm.rag.bm25 import tokenize
from dl2llm.rag.encoder import shared_encoder
from dl2llm.rag.generate import use_one_thread
from dl2llm.rag.index import Index
from dl2llm.rag.pipeline import faq_questions
from dl2llm.rag.retrieve import MODES, Retriever

RETRIEVAL_TARGET_MS, ANSWER_TARGET_S = 20.0, 3.0
ANSWER_QUESTIONS = (
    "What does functools.lru_cache do?",
    "How do I create a stand-alone binary from a Python script?",
    "How do I handle an exception in Python?",
    "How can I make a Python script executable on Windows?",
    "What is the difference between a list and a tuple?",
    "How do I read a file line by line?",
    "What does the with statement do?",
    "How do I sort a list of dictionaries by a key?",
)


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) of a list of timings."""
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


def timed(run: Callable[[], object]) -> float:
    """Seconds that one call of ``run`` takes."""
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def scaled_index(index: Index, size: int, seed: int) -> Index:
    """``index`` repeated (vectors jittered and renormalised) to ``size`` chunks, in memory."""
    import faiss

    base = index.vectors.index.reconstruct_n(0, index.vectors.ntotal)  # (N, dim)
    chunks = list(index.chunks.values())
    picks = np.arange(size) % len(chunks)
    noise = np.random.default_rng(seed).normal(0, 0.01, (size, base.shape[1])).astype(np.float32)
    vectors = base[picks] + noise  # (size, dim)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(base.shape[1]))
    flat.add_with_ids(vectors, np.arange(size, dtype=np.int64))
    scaled = {i: replace(chunks[p], chunk_id=i) for i, p in enumerate(picks.tolist())}
    return Index(index.folder, {**index.manifest, "chunks": size}, scaled, flat)


def bench_retrieval(retriever: Retriever, questions: list[str], label: str) -> dict[str, float]:
    """p50/p95 milliseconds of top-5 retrieval per mode, then :func:`bench_baselines`."""
    metrics = {}
    for mode in MODES:
        retriever.retrieve(questions[0], 5, mode)  # warm-up
        times = [1000 * timed(lambda q=q, m=mode: retriever.retrieve(q, 5, m)) for q in questions]
        p50, p95 = percentiles(times)
        metrics[f"{label}_{mode}_p50_ms"], metrics[f"{label}_{mode}_p95_ms"] = p50, p95
    metrics.update(bench_baselines(retriever, questions, label))
    return metrics


def bench_baselines(retriever: Retriever, questions: list[str], label: str) -> dict[str, float]:
    """Median speed-ups of ``bm25s`` over ``rank_bm25`` and of FAISS over NumPy, top 50."""
    from rank_bm25 import BM25Okapi

    index = retriever.index
    sparse, encoder = index.sparse, retriever.encoder
    okapi = BM25Okapi([tokenize(c.embedding_text()) or ["\0"] for c in index.chunks.values()])
    queries = [tokenize(q) for q in questions]
    full_scan = statistics.median(timed(lambda t=t: okapi.get_scores(t)) for t in queries)
    ours = statistics.median(timed(lambda q=q: sparse.search(q, 50)) for q in questions)
    matrix = index.vectors.index.reconstruct_n(0, index.vectors.ntotal)  # (N, dim)
    vectors = encoder.encode(questions)  # (Q, dim)
    brute = statistics.median(timed(lambda v=v: np.argsort(-(matrix @ v))[:50]) for v in vectors)
    flat = statistics.median(timed(lambda v=v: index.search_dense(v[None], 50)) for v in vectors)
    return {
        f"{label}_bm25s_speedup_vs_rank_bm25": full_scan / ours,
        f"{label}_faiss_speedup_vs_numpy": brute / flat,
    }


def bench_query_encoder(encoder, questions: list[str]) -> dict[str, float]:
    """ONNX Runtime vs sentence-transformers for one question: time and agreement."""
    for question in questions[:2]:  # warm-up
        encoder.encode_query(question), encoder.encode([question])
    onnx = statistics.median(timed(lambda q=q: encoder.encode_query(q)) for q in questions)
    torch = statistics.median(timed(lambda q=q: encoder.encode([q])) for q in questions)
    diff = max(
        float(np.abs(encoder.encode_query(q) - encoder.encode([q])).max()) for q in questions
    )
    return {
        "query_onnx_ms": 1000 * onnx,
        "query_torch_ms": 1000 * torch,
        "query_onnx_speedup": torch / onnx,
        "query_onnx_max_abs_diff": diff,
    }


def time_answers(
    pipeline, questions: tuple[str, ...], max_new_tokens: int
) -> tuple[list[float], list[str]]:
    """``(seconds, texts)`` of answering each question once."""
    pipeline.ask(questions[0], max_new_tokens=4)  # warm-up
    seconds, texts = [], []
    for question in questions:
        answer = pipeline.ask(question, k=5, max_new_tokens=max_new_tokens)
        seconds.append(answer.timings["total_ms"] / 1000)
        texts.append(answer.text)
    return seconds, texts


def bench_answers(pipeline, questions: tuple[str, ...], max_new_tokens: int) -> dict[str, Any]:
    """Answer latency with prompt-lookup decoding, and plain greedy decoding as the baseline."""
    pipeline.min_confidence = 0.0  # every question generates
    generator = pipeline.generator
    seconds, texts = time_answers(pipeline, questions, max_new_tokens)
    lookup_tokens, generator.prompt_lookup_tokens = generator.prompt_lookup_tokens, None
    greedy_seconds, greedy_texts = time_answers(pipeline, questions, max_new_tokens)
    generator.prompt_lookup_tokens = lookup_tokens
    tokens = [len(generator.tokenizer(text)["input_ids"]) for text in texts]
    p50, p95 = percentiles(seconds)
    return {
        "answer_p50_s": p50,
        "answer_p95_s": p95,
        "answer_greedy_p50_s": percentiles(greedy_seconds)[0],
        "answer_prompt_lookup_speedup": sum(greedy_seconds) / sum(seconds),
        "answer_same_text_as_greedy": texts == greedy_texts,
        "answer_mean_new_tokens": float(np.mean(tokens)),
        "answer_tokens_per_s": float(sum(tokens) / sum(seconds)),
    }


@dataclass
class RagBenchConfig:
    """Sizes of the RAG benchmark (``quick()`` for CI)."""

    sample_corpus: bool = False  # index the sample documents in a temporary folder instead
    questions: int = 100  # FAQ questions timed for retrieval
    large_chunks: int = 100_000  # size of the synthetic larger index
    answers: int = len(ANSWER_QUESTIONS)  # questions answered end to end
    max_new_tokens: int = 128
    seed: int = 0

    @classmethod
    def quick(cls, seed: int = 0) -> RagBenchConfig:
        return cls(sample_corpus=True, questions=10, large_chunks=10_000, answers=2,
                   max_new_tokens=16, seed=seed)  # fmt: skip


def run_benchmark(config: RagBenchConfig) -> dict[str, Any]:
    """Every timing above, and whether the targets are met (p50s of hybrid retrieval, answers).

    The full run: the service's index, 100 questions, 100k chunks and 8 answers of up to
    128 tokens; ``quick()``: a sample corpus indexed in a temporary folder, 10 questions,
    a 10k-chunk large index and 2 answers of 16 tokens.
    """
    use_one_thread()
    encoder = shared_encoder(onnx=True)
    with tempfile.TemporaryDirectory(prefix="bench-rag-") as tmp:
        if config.sample_corpus:
            documents, source = sample_documents()
            index = build_index(documents, tmp, encoder, source=source, progress=False)
        else:
            index = ensure_index(default_data_dir(), encoder)
        questions = [q for q, _, _ in faq_questions(index)][: config.questions]
        metrics: dict[str, Any] = {"corpus_chunks": len(index), "large_chunks": config.large_chunks}
        metrics.update(bench_query_encoder(encoder, questions))
        metrics.update(bench_retrieval(Retriever(index, encoder), questions, "corpus"))
        scaled = Retriever(scaled_index(index, config.large_chunks, config.seed), encoder)
        metrics.update(bench_retrieval(scaled, questions, "large"))
        # SmolLM2 answering from passages: the generator that decodes with prompt lookup
        pipeline = load_pipeline(index, encoder, generator="previous")
        answer_questions = ANSWER_QUESTIONS[: config.answers]
        metrics.update(bench_answers(pipeline, answer_questions, config.max_new_tokens))
    metrics["retrieval_target_met"] = metrics["corpus_hybrid_p50_ms"] < RETRIEVAL_TARGET_MS
    metrics["retrieval_target_met_at_large"] = metrics["large_hybrid_p50_ms"] < RETRIEVAL_TARGET_MS
    metrics["answer_target_met"] = metrics["answer_p50_s"] < ANSWER_TARGET_S
    return metrics
