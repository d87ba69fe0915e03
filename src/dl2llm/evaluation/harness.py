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

from dl2llm.evaluation import judge, metrics
from dl2llm.evaluation.dataset import EvalItem
from dl2llm.evaluation.questions import Question, Unanswerable
from dl2llm.rag import (
    SAMPLE_DOCUMENTS,
    build_index,
    default_data_dir,
    ensure_index,
    sample_documents,
)
from dl2llm.rag.encoder import Encoder
from dl2llm.rag.index import Index
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
            prepared.hits, prepared.evidence, prepared.refused = [], [], False
        text = "".join(pipeline.stream(prepared, max_new_tokens)).strip()
        elapsed = 1000 * (time.perf_counter() - started)
        evidence = pipeline.retriever.retrieve(item.question, k, mode) if not retrieval else None
        passages = [hit.text for hit in (evidence or prepared.hits)]
        shown = prepared.hits  # what the citations number
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
                "faithfulness": judge.faithfulness(text, passages_of(shown)),
                "junk": judge.junk_kind(text),
                "latency_ms": elapsed,
            }
        )
    return summarize(rows), rows


def summarize(rows: Sequence[dict]) -> dict:
    """Means with bootstrap 95% intervals of the per-question scores, plus latency."""
    summary = {}
    for name in ("em", "f1", "similarity", "groundedness", "citation_accuracy", "refused"):
        summary[name] = metrics.bootstrap_interval([row[name] for row in rows])
    summary["faithfulness"] = metrics.bootstrap_interval([row["faithfulness"] for row in rows])
    summary["junk_rate"] = metrics.bootstrap_interval(
        [float(row["junk"] is not None) for row in rows]
    )
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


def open_index(
    encoder: Encoder,
    quick: bool,
    data_dir: Path | None = None,
    documents: tuple[str, ...] = SAMPLE_DOCUMENTS,
) -> Index:
    """The full corpus index (built once, cached), or in quick mode one of ``documents``.

    The quick index is built in a temporary folder that is removed at exit.
    """
    if not quick:
        return ensure_index(data_dir or default_data_dir(), encoder)
    folder = Path(tempfile.mkdtemp(prefix="dl2llm-eval-index-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    documents, source = sample_documents(documents)
    return build_index(documents, folder, encoder, source=source, progress=False)


def passages_of(hits: Sequence) -> list[str]:
    """What a citation ``【n】`` points at: the n-th shown passage, with its id and title.

    The id (``functools.lru_cache``) is the qualified name an answer quotes.
    """
    return [f"{hit.anchor}\n{hit.title}\n{hit.text}" for hit in hits]


def _answer(pipeline: RAGPipeline, question: str, k: int, mode: str, retrieval: bool):
    """``(prepared, answer text, milliseconds)`` of one question, timed end to end."""
    started = time.perf_counter()
    prepared = pipeline.prepare(question, k, mode)
    if not retrieval:
        prepared.hits, prepared.evidence, prepared.refused = [], [], False
    text = "".join(pipeline.stream(prepared)).strip()
    return prepared, text, 1000 * (time.perf_counter() - started)


def ask_answerable(
    pipeline: RAGPipeline,
    questions: Sequence[Question],
    k: int = 5,
    mode: str = "hybrid",
    retrieval: bool = True,
    label: str = "answerable",
) -> list[dict]:
    """One row per hand-written question: the answer and every per-answer criterion."""
    rows = []
    for item in tqdm(questions, desc=label, leave=False):
        prepared, text, elapsed = _answer(pipeline, item.question, k, mode, retrieval)
        passages = passages_of(prepared.hits)
        refused = prepared.refused or judge.is_refusal(text)
        rows.append(
            {
                "question": item.question,
                "answer": text,
                "gold_docs": list(item.gold_docs),
                "key_terms": list(item.key_terms),
                "retrieved_gold": any(hit.doc_id in item.gold_docs for hit in prepared.hits),
                "confidence": prepared.confidence,
                "evidence_score": prepared.evidence[0].score if prepared.evidence else None,
                "out_of_scope": prepared.out_of_scope,
                "refused": refused,
                "key_term": (not refused) and judge.names_key_term(text, item.key_terms),
                "citation_accuracy": judge.citation_accuracy(text, passages, item.key_terms),
                "faithfulness": judge.faithfulness(text, passages),
                "junk": judge.junk_kind(text),
                "latency_ms": elapsed,
            }
        )
    return rows


def ask_unanswerable(
    pipeline: RAGPipeline,
    questions: Sequence[Unanswerable],
    k: int = 5,
    mode: str = "hybrid",
    retrieval: bool = True,
    label: str = "unanswerable",
) -> list[dict]:
    """One row per question the docs cannot answer: did the system refuse it?"""
    rows = []
    for item in tqdm(questions, desc=label, leave=False):
        prepared, text, elapsed = _answer(pipeline, item.question, k, mode, retrieval)
        rows.append(
            {
                "question": item.question,
                "kind": item.kind,
                "answer": text,
                "confidence": prepared.confidence,
                "evidence_score": prepared.evidence[0].score if prepared.evidence else None,
                "out_of_scope": prepared.out_of_scope,
                "refused": prepared.refused or judge.is_refusal(text),
                "junk": judge.junk_kind(text),
                "latency_ms": elapsed,
            }
        )
    return rows


def summarize_user(answerable_rows: Sequence[dict], unanswerable_rows: Sequence[dict]) -> dict:
    """The headline numbers of one system, each a mean with its bootstrap 95% interval."""
    interval = metrics.bootstrap_interval
    in_domain = [r for r in unanswerable_rows if r["kind"] != "off_topic"]
    off_topic = [r for r in unanswerable_rows if r["kind"] == "off_topic"]
    everything = [*answerable_rows, *unanswerable_rows]
    answered = [r for r in answerable_rows if not r["refused"]]
    return {
        "key_term_accuracy": interval([float(r["key_term"]) for r in answerable_rows]),
        "citation_accuracy": interval([r["citation_accuracy"] for r in answered]),
        "faithfulness": interval([r["faithfulness"] for r in answered]),
        "junk_rate": interval([float(r["junk"] is not None) for r in everything]),
        "false_refusal_rate": interval([float(r["refused"]) for r in answerable_rows]),
        "wrong_on_unanswerable": interval([float(not r["refused"]) for r in in_domain]),
        "wrong_on_off_topic": interval([float(not r["refused"]) for r in off_topic]),
        "retrieval_recall": interval([float(r["retrieved_gold"]) for r in answerable_rows]),
        **metrics.latency_percentiles([r["latency_ms"] for r in answerable_rows]),
    }
