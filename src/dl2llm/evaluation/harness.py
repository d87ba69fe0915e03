"""Run the metrics over a system: retrieval modes, with/without retrieval, base vs tuned.

:func:`evaluate_retrieval` scores a retriever mode on every item;
:func:`evaluate_answers` asks a generator each question (with the passages the
pipeline retrieved, or with none for the closed-book baseline) and scores the
answers; :func:`evaluate_refusals` asks the off-topic questions. Each returns
plain numbers (means with bootstrap intervals) ready for a results JSON.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dl2llm.evaluation import metrics
from dl2llm.evaluation.dataset import EvalItem
from dl2llm.rag import build_index, default_data_dir, ensure_index, sample_documents
from dl2llm.rag.generate import CONTEXT_PASSAGES
from dl2llm.rag.index import Encoder, Index
from dl2llm.rag.pipeline import RAGPipeline
from dl2llm.rag.retrieve import Retriever

RECALL_KS = (1, 5, 10)


def evaluate_retrieval(
    retriever: Retriever, items: Sequence[EvalItem], mode: str
) -> dict[str, float]:
    """recall@1/5/10, MRR@10, nDCG@10 and query latency of one retrieval ``mode``."""
    rows: dict[str, list[float]] = {f"recall@{k}": [] for k in RECALL_KS}
    rows.update({"mrr@10": [], "ndcg@10": []})
    latency = []
    for item in items:
        found = retriever.search(item.question, 10, mode)
        latency.append(1000 * found.seconds)
        ranked = [hit.chunk_id for hit in found.hits]
        gold = set(item.gold_chunk_ids)
        for k in RECALL_KS:
            rows[f"recall@{k}"].append(metrics.recall_at_k(ranked, gold, k))
        rows["mrr@10"].append(metrics.reciprocal_rank(ranked, gold, 10))
        rows["ndcg@10"].append(metrics.ndcg_at_k(ranked, gold, 10))
    result = {name: float(np.mean(values)) for name, values in rows.items()}
    return result | metrics.latency_percentiles(latency)


def _embedder(encoder: Encoder) -> metrics.Embed:
    return lambda texts: encoder.encode(list(texts))


def evaluate_answers(
    pipeline: RAGPipeline,
    encoder: Encoder,
    items: Sequence[EvalItem],
    retrieval: bool = True,
    k: int = 5,
    mode: str = "hybrid",
    max_new_tokens: int = 48,
    label: str = "answers",
) -> tuple[dict, list[dict]]:
    """Answer each item and score it; returns ``(summary, per-question rows)``.

    With ``retrieval=False`` the generator sees no passages (the closed-book
    baseline) and is never refused; groundedness is still measured against the
    passages retrieval *would* have given, i.e. whether it said what the
    corpus says.
    """
    embed = _embedder(encoder)
    rows = []
    for item in tqdm(items, desc=label, leave=False):
        started = time.perf_counter()
        prepared = pipeline.prepare(item.question, k, mode)
        if not retrieval:
            prepared.hits, prepared.refused = [], False
        text = "".join(pipeline.stream(prepared, max_new_tokens)).strip()
        elapsed = 1000 * (time.perf_counter() - started)
        evidence = pipeline.retriever.retrieve(item.question, k, mode) if not retrieval else None
        passages = [hit.text for hit in (evidence or prepared.hits)]
        shown = prepared.hits[:CONTEXT_PASSAGES]  # what the citations number
        rows.append(
            {
                "question": item.question,
                "answer": text,
                "refused": metrics.is_refusal(text),
                "em": metrics.exact_match(text, item.gold_answer),
                "f1": metrics.token_f1(metrics.strip_citations(text), item.gold_answer),
                "similarity": metrics.embedding_similarity(text, item.gold_answer, embed),
                "groundedness": metrics.groundedness(text, passages, embed),
                "citation_accuracy": metrics.citation_accuracy(
                    text, [hit.chunk_id in item.gold_chunk_ids for hit in shown]
                ),
                "latency_ms": elapsed,
            }
        )
    return summarize(rows), rows


def summarize(rows: Sequence[dict]) -> dict:
    """Means with bootstrap 95% intervals of the per-question scores, plus latency."""
    summary = {}
    for name in ("em", "f1", "similarity", "groundedness", "citation_accuracy", "refused"):
        summary[name] = metrics.bootstrap_interval([row[name] for row in rows])
    summary.update(metrics.latency_percentiles([row["latency_ms"] for row in rows]))
    return summary


def evaluate_refusals(
    pipeline: RAGPipeline, questions: Sequence[str], k: int = 5, max_new_tokens: int = 32
) -> dict[str, float]:
    """Share of off-topic questions the pipeline refuses (threshold or "I don't know")."""
    refused = []
    for question in questions:
        answer = pipeline.ask(question, k, max_new_tokens=max_new_tokens)
        refused.append(answer.refused or metrics.is_refusal(answer.text))
    return {"refusal_rate": float(np.mean(refused)), "n": len(refused)}


def paired_difference(tuned: Sequence[dict], base: Sequence[dict], name: str) -> dict:
    """Mean of ``tuned - base`` per question with a bootstrap 95% interval."""
    differences = [
        t[name] - b[name]
        for t, b in zip(tuned, base, strict=True)
        if t[name] is not None and b[name] is not None
    ]
    return metrics.bootstrap_interval(differences)


def open_index(encoder: Encoder, quick: bool, data_dir: Path | None = None) -> Index:
    """The full corpus index (built once, cached), or in quick mode a 3-document one.

    The quick index is built in a temporary folder that is removed at exit.
    """
    if not quick:
        return ensure_index(data_dir or default_data_dir(), encoder)
    folder = Path(tempfile.mkdtemp(prefix="dl2llm-eval-index-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    documents, source = sample_documents()
    return build_index(documents, folder, encoder, source=source, progress=False)
