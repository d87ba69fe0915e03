"""The RAG deliverable's run: the index, its measurements, and one question answered.

What ``capstone/retrieval_augmented_generation.py`` does with its flags: build
(once) or open the index (a 3-document one in a temporary folder for
``--quick``), calibrate the refusal threshold on the FAQ's questions against
off-topic ones, measure recall@k and MRR of every retrieval mode on the FAQ's
question headings, then answer the question as the service does (after a
warm-up), streaming it to the terminal with its sources. The functions take the
script's parsed flags (an ``argparse.Namespace``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from dl2llm.errors import UsageError
from dl2llm.rag import (
    build_index,
    default_data_dir,
    ensure_index,
    load_pipeline,
    sample_documents,
    served_model,
)
from dl2llm.rag.checks import citations
from dl2llm.rag.encoder import Encoder
from dl2llm.rag.generate import use_one_thread
from dl2llm.rag.ingest import Document
from dl2llm.rag.pipeline import RAGPipeline, calibrate_threshold, faq_questions, section_recall
from dl2llm.rag.retrieve import MODES

DEFAULT_QUESTION = "How do I create a stand-alone binary from a Python script?"
MAX_K = 20  # passages retrieved at most
QUICK_MAX_NEW_TOKENS = 24  # --quick: short answers


def question_flags(args: argparse.Namespace) -> argparse.Namespace:
    """Check the flags and resolve the served model, in place; return ``args``.

    ``generator``/``adapter`` become what the service would serve
    (:func:`~dl2llm.rag.served_model`); ``--quick`` caps ``--max-new-tokens``.
    """
    args.generator, args.adapter = served_model(args.generator, None, args.no_adapter)
    if not args.question.strip():
        raise UsageError("the question is empty")
    if args.docs is not None and not args.docs.is_dir():
        raise UsageError(f"--docs {args.docs}: no such folder")
    if args.k > MAX_K:
        raise UsageError(f"--k must be at most {MAX_K}, got {args.k}")
    if args.quick:
        args.max_new_tokens = min(args.max_new_tokens, QUICK_MAX_NEW_TOKENS)
    return args


def results_config(args: argparse.Namespace) -> dict[str, Any]:
    """The checked flags for the results file (the folders left out)."""
    config = {k: v for k, v in vars(args).items() if k not in ("out", "data_dir", "docs")}
    config["adapter"] = str(args.adapter) if args.adapter else None
    return config


def run_lesson(args: argparse.Namespace) -> dict[str, Any]:
    """Measure the index and answer ``args.question``; return the metrics.

    ``--quick``: a 3-document index built in a temporary folder; otherwise the index
    in ``--data-dir`` (or the default folder), built from ``--docs`` when missing.
    """
    if not args.quick:
        return measure_and_ask(args, Path(args.data_dir or default_data_dir()))
    with tempfile.TemporaryDirectory(prefix="dl2llm-rag-") as tmp:
        return measure_and_ask(args, Path(tmp), build_documents=sample_documents())


def measure_and_ask(
    args: argparse.Namespace,
    index_dir: Path,
    build_documents: tuple[list[Document], str] | None = None,
) -> dict[str, Any]:
    """Open (or build from ``build_documents``) the index, measure it, answer the question."""
    encoder = Encoder(onnx=True)  # as the service: questions and sentences through ONNX Runtime
    built = time.perf_counter()
    if build_documents is not None:
        documents, source = build_documents
        index = build_index(documents, index_dir, encoder, source=source, progress=False)
    else:
        index = ensure_index(index_dir, encoder, args.docs, rebuild=args.rebuild)
    metrics: dict[str, Any] = {"chunks": len(index), "documents": len(index.documents)}
    metrics["index_load_s"] = round(time.perf_counter() - built, 2)
    questions = faq_questions(index)
    if questions:
        calibration = calibrate_threshold(index, encoder)
        metrics.update({f"calibration_{k}": v for k, v in calibration.items()})
    use_one_thread()
    pipeline = load_pipeline(
        index, encoder, args.llm, args.generator, args.max_new_tokens, adapter=args.adapter
    )
    if questions:
        metrics["faq_questions"] = len(questions)
        metrics.update(retrieval_recall(pipeline, questions, args.k))
    pipeline.warm_up()  # as the service does: the timed answer is not the first one
    metrics.update(ask(pipeline, args.question, args.k, args.mode))
    return metrics


def retrieval_recall(
    pipeline: RAGPipeline, questions: list[tuple[str, str, str]], k: int
) -> dict[str, float]:
    """``<mode>_<score>``: recall@k and MRR of every retrieval mode on the FAQ questions."""
    metrics = {}
    for mode in MODES:
        scores = section_recall(pipeline.retriever, questions, k, mode)
        metrics.update({f"{mode}_{name}": round(value, 4) for name, value in scores.items()})
    return metrics


def ask(pipeline: RAGPipeline, question: str, k: int, mode: str) -> dict[str, Any]:
    """Answer ``question``, streaming it and then its sources to the terminal; timed."""
    print(f"\nQ: {question}\nA: ", end="", flush=True)
    started = time.perf_counter()
    prepared = pipeline.prepare(question, k, mode)
    pieces = []
    for piece in pipeline.stream(prepared):
        pieces.append(piece)
        print(piece, end="", flush=True)
    seconds = time.perf_counter() - started
    print("\n\nSources:")
    for n, hit in enumerate(prepared.hits, 1):
        print(f"  [{n}] {hit.title}  ({hit.path}#{hit.anchor}, score {hit.score:.3f})")
    answer = "".join(pieces).strip()
    return {
        "question": question,
        "answer": answer,
        "refused": prepared.refused,
        "confidence": round(prepared.confidence, 4),
        "cites_a_source": any(1 <= n <= len(prepared.hits) for n in citations(answer)),
        "sources": [f"{h.path}#{h.anchor}" for h in prepared.hits],
        "retrieve_ms": round(prepared.retrieve_ms, 1),
        "answer_s": round(seconds, 2),
    }
