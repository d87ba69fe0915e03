"""The capstone's evaluation run: every system on both question sets, and dev tuning.

:func:`evaluate_systems` answers the hand-written questions of one split
(answerable, in-domain unanswerable, off-topic) and the FAQ questions of the
same split with each system of :mod:`dl2llm.evaluation.systems`, and returns
flat metrics (each with its 95% interval) plus every answer, for the report.
:func:`tune_on_dev` answers the dev questions with no refusal threshold and
fits both thresholds on them (:func:`~dl2llm.evaluation.systems.tune_thresholds`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dl2llm.evaluation import harness
from dl2llm.evaluation.dataset import faq_items, split_items
from dl2llm.evaluation.metrics import latency_percentiles
from dl2llm.evaluation.questions import answerable, of_split, unanswerable
from dl2llm.evaluation.systems import LLM_SYSTEMS, NEVER, build_system, tune_thresholds
from dl2llm.rag.encoder import Encoder
from dl2llm.rag.generate import load_model
from dl2llm.rag.index import Index
from dl2llm.rag.retrieve import MODES, Retriever

USER_METRICS = (
    "key_term_accuracy",
    "citation_accuracy",
    "faithfulness",
    "junk_rate",
    "false_refusal_rate",
    "wrong_on_unanswerable",
    "wrong_on_off_topic",
    "retrieval_recall",
)
FAQ_METRICS = ("f1", "similarity", "citation_accuracy", "faithfulness", "junk_rate")


def questions_in(index: Index, split: str) -> tuple[list, list]:
    """The split's answerable questions whose gold documents are indexed, and its unanswerable."""
    documents = set(index.documents)
    asked = [q for q in of_split(answerable(), split) if set(q.gold_docs) & documents]
    return asked, of_split(unanswerable(), split)


def flatten(prefix: str, summary: dict, names: Sequence[str]) -> dict:
    """``{prefix_name: mean, prefix_name_ci: [low, high]}`` plus the latency percentiles."""
    flat = {}
    for name in names:
        value = summary[name]
        flat[f"{prefix}_{name}"] = value["mean"]
        flat[f"{prefix}_{name}_ci"] = [value["low"], value["high"]]
    flat[f"{prefix}_p50_ms"] = summary["p50_ms"]
    flat[f"{prefix}_p95_ms"] = summary["p95_ms"]
    return flat


def evaluate_systems(
    index: Index,
    encoder: Encoder,
    systems: Sequence[str],
    split: str = "test",
    max_new_tokens: int = 48,
    limit: int | None = None,
    k: int = 5,
    adapter: Path | None = None,
) -> tuple[dict, dict]:
    """``(metrics, answers)``: each system on the split's user and FAQ questions.

    ``limit`` caps every question list (quick runs). ``answers[system]`` holds
    the per-question rows. ``adapter``: the LoRA file ``evidence_llm_tuned`` serves.
    """
    asked, refused = questions_in(index, split)
    faq = split_items(faq_items(index), split)
    asked, refused, faq = asked[:limit], refused[:limit], faq[:limit]
    llm = load_model() if set(systems) & (set(LLM_SYSTEMS) - {"evidence_llm_tuned"}) else None
    tuned = load_model(adapter=adapter) if "evidence_llm_tuned" in systems else None
    metrics = {"answerable": len(asked), "unanswerable": len(refused), "faq_questions": len(faq)}
    answers = {}
    for name in systems:
        model = tuned if name == "evidence_llm_tuned" else llm
        pipeline = build_system(name, index, encoder, model, max_new_tokens)
        retrieval = name != "no_retrieval"
        rows = harness.ask_answerable(pipeline, asked, k, retrieval=retrieval, label=name)
        declined = harness.ask_unanswerable(pipeline, refused, k, retrieval=retrieval, label=name)
        metrics |= flatten(name, harness.summarize_user(rows, declined), USER_METRICS)
        faq_summary, faq_rows = harness.evaluate_answers(
            pipeline, encoder, faq, retrieval, k, max_new_tokens=max_new_tokens, label=f"{name} faq"
        )
        metrics |= flatten(f"faq_{name}", faq_summary, FAQ_METRICS)
        answers[name] = {"answerable": rows, "unanswerable": declined, "faq": faq_rows}
        if getattr(pipeline.generator, "style", None) == "evidence":
            rejections = pipeline.generator.rejections
            phrased = sum(not r.get("refused", False) for r in rows + declined + faq_rows)
            metrics[f"{name}_phrasings_rejected"] = sum(rejections.values()) / max(1, phrased)
            metrics[f"{name}_changed_lead"] = pipeline.generator.changed_lead / max(1, phrased)
            metrics[f"{name}_rejection_reasons"] = dict(rejections)
    metrics |= retrieval_baselines(index, encoder, asked)
    return metrics, answers


def tune_on_dev(index: Index, encoder: Encoder, limit: int | None = None) -> dict:
    """Both refusal thresholds, fitted on the dev questions with the evidence system."""
    asked, refused = questions_in(index, "dev")
    pipeline = build_system("evidence", index, encoder, thresholds=(NEVER, NEVER))
    rows = harness.ask_answerable(pipeline, asked[:limit], label="dev answerable")
    declined = harness.ask_unanswerable(pipeline, refused[:limit], label="dev unanswerable")
    return tune_thresholds(rows, declined)


RETRIEVAL_KS = (1, 5, 10)


def retrieval_baselines(index: Index, encoder: Encoder, asked: Sequence) -> dict:
    """Document recall@1/5/10, MRR@10 and latency of each retriever on the questions.

    A hit is right when its document is one of the question's gold documents.
    """
    retriever = Retriever(index, encoder)
    flat = {}
    for mode in MODES:
        ranks, seconds = [], []
        for item in asked:
            found = retriever.search(item.question, max(RETRIEVAL_KS), mode)
            seconds.append(found.seconds)
            right = [n for n, hit in enumerate(found.hits, 1) if hit.doc_id in item.gold_docs]
            ranks.append(right[0] if right else None)
        for k in RETRIEVAL_KS:
            flat[f"retrieval_{mode}_recall@{k}"] = float(
                np.mean([r is not None and r <= k for r in ranks])
            )
        flat[f"retrieval_{mode}_mrr@10"] = float(np.mean([1 / r if r else 0.0 for r in ranks]))
        latency = latency_percentiles([1000 * s for s in seconds])
        flat[f"retrieval_{mode}_p50_ms"] = latency["p50_ms"]
        flat[f"retrieval_{mode}_p95_ms"] = latency["p95_ms"]
    return flat


DEV_CHOICES = ("evidence", "evidence_llm", "evidence_llm_tuned")
LATENCY_TARGETS_MS = {"p50_ms": 1500.0, "p95_ms": 3000.0}  # a full answer on 2 cores
DEV_METRICS = (
    "key_term_accuracy",
    "faithfulness",
    "junk_rate",
    "false_refusal_rate",
    "wrong_on_unanswerable",
)


def compare_on_dev(
    index: Index,
    encoder: Encoder,
    adapter: Path,
    limit: int | None = None,
    max_new_tokens: int = 64,
) -> dict:
    """The evidence answer, base SmolLM2 and tuned SmolLM2 on the hand-written dev questions.

    Returns per system its user metrics (means), p50/p95 latency and, for the
    models, the share of phrasings that passed the check and that changed the
    lead entry; plus ``key_term_gain``, the tuned minus base key-term accuracy
    per question with its paired bootstrap interval.
    """
    asked, refused = questions_in(index, "dev")
    asked, refused = asked[:limit], refused[:limit]
    models = {"evidence_llm": load_model(), "evidence_llm_tuned": load_model(adapter=adapter)}
    results, rows = {}, {}
    for name in DEV_CHOICES:
        pipeline = build_system(name, index, encoder, models.get(name), max_new_tokens)
        pipeline.warm_up()
        rows[name] = harness.ask_answerable(pipeline, asked, label=f"dev {name}")
        declined = harness.ask_unanswerable(pipeline, refused, label=f"dev {name}")
        summary = harness.summarize_user(rows[name], declined)
        results[name] = {metric: summary[metric]["mean"] for metric in DEV_METRICS}
        results[name] |= {"p50_ms": summary["p50_ms"], "p95_ms": summary["p95_ms"]}
        generator = pipeline.generator
        if name != "evidence":
            phrased = sum(not r["refused"] for r in rows[name] + declined)
            passed = phrased - sum(generator.rejections.values())
            results[name]["phrasings_passed"] = passed / max(1, phrased)
            results[name]["changed_lead"] = generator.changed_lead / max(1, phrased)
    results["key_term_gain"] = harness.paired_difference(
        rows["evidence_llm_tuned"], rows["evidence_llm"], "key_term"
    )
    results["questions"] = {"answerable": len(asked), "unanswerable": len(refused)}
    return results


def choose_served(dev: dict) -> str:
    """The system to serve: the best dev key-term accuracy among those meeting the latency
    targets; a tie goes to the earlier of :data:`DEV_CHOICES` (the simpler system).

    >>> choose_served({"evidence": {"key_term_accuracy": 0.6, "p50_ms": 300, "p95_ms": 500},
    ...                "evidence_llm": {"key_term_accuracy": 0.7, "p50_ms": 2e3, "p95_ms": 4e3},
    ...                "evidence_llm_tuned": {"key_term_accuracy": 0.6, "p50_ms": 1e3,
    ...                                       "p95_ms": 2e3}})
    'evidence'
    """
    fast = [
        name
        for name in DEV_CHOICES
        if all(dev[name][key] <= limit for key, limit in LATENCY_TARGETS_MS.items())
    ]
    return max(fast or ["evidence"], key=lambda name: dev[name]["key_term_accuracy"])
