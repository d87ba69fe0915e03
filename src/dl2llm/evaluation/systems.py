"""The systems the capstone compares, and the refusal thresholds tuned on dev.

Every system shares the index, the encoder and the hybrid retriever; they
differ in how they answer and when they refuse:

- ``evidence`` -- the evidence answer alone, no language model
  (:class:`~dl2llm.rag.generate.EvidenceGenerator`);
- ``evidence_llm`` -- SmolLM2 chooses among the best API entries and answers
  in one sentence, checked; the entry it chose leads the evidence answer
  (``LLMGenerator(style="evidence")``);
- ``evidence_llm_tuned`` -- the same with the LoRA adapter of
  ``capstone/fine_tuning_pipeline.py`` merged in (:func:`dl2llm.rag.generate.load_model`);
- ``previous`` -- the system before this design: SmolLM2 answering from the
  first 80 words of three passages, refusing on the retrieval threshold alone;
- ``no_retrieval`` -- SmolLM2 with no passages at all (closed book).

:func:`tune_thresholds` picks the two refusal thresholds (best dense cosine,
best evidence score) on the **dev** questions only, by the balanced error of
refusing answerable questions and answering unanswerable ones, and writes them
to ``data/capstone_qa/thresholds.json``, where the service reads them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np

from dl2llm.evaluation.questions import ANSWERABLE_FILES, OFF_TOPIC_FILE, QA_DIR, UNANSWERABLE_FILE
from dl2llm.io import atomic_write_json
from dl2llm.rag.encoder import Encoder
from dl2llm.rag.generate import EvidenceGenerator, LLMGenerator
from dl2llm.rag.index import Index
from dl2llm.rag.pipeline import (
    CALIBRATION,
    DEFAULT_MIN_CONFIDENCE,
    DEV_THRESHOLDS,
    RAGPipeline,
    load_thresholds,
)
from dl2llm.rag.retrieve import Retriever

SYSTEMS = ("evidence", "evidence_llm", "evidence_llm_tuned", "previous", "no_retrieval")
LLM_SYSTEMS = ("evidence_llm", "evidence_llm_tuned", "previous", "no_retrieval")
NEVER = float("-inf")


def previous_threshold(index: Index) -> float:
    """The retrieval threshold the previous system used: calibrated at build time."""
    path = index.folder / CALIBRATION
    return json.loads(path.read_text())["threshold"] if path.is_file() else DEFAULT_MIN_CONFIDENCE


def build_system(
    name: str,
    index: Index,
    encoder: Encoder,
    llm=None,
    max_new_tokens: int = 48,
    thresholds: tuple[float, float] | None = None,
) -> RAGPipeline:
    """The pipeline of system ``name`` (see the module docstring); ``llm``: a loaded
    ``(model, tokenizer)`` (for ``evidence_llm_tuned``, the one with the adapter merged).

    ``thresholds`` overrides the tuned ``(min_confidence, min_evidence)``
    (tuning runs with ``(NEVER, NEVER)`` to see every score).
    """
    if name not in SYSTEMS:
        raise ValueError(f"unknown system '{name}' (use one of {', '.join(SYSTEMS)})")
    retriever = Retriever(index, encoder)
    min_confidence, min_evidence = thresholds or load_thresholds(index)
    if name == "evidence":
        return RAGPipeline(retriever, EvidenceGenerator(), min_confidence, min_evidence)
    model, tokenizer = llm
    if name in ("evidence_llm", "evidence_llm_tuned"):
        generator = LLMGenerator(model, tokenizer, max_new_tokens, style="evidence")
        return RAGPipeline(retriever, generator, min_confidence, min_evidence)
    generator = LLMGenerator(model, tokenizer, max_new_tokens, style="passages")
    threshold = previous_threshold(index) if name == "previous" else NEVER
    return RAGPipeline(retriever, generator, threshold, NEVER, scope_check=False)


def balanced_error(answerable: np.ndarray, unanswerable: np.ndarray, cut: float) -> float:
    """Mean of the false-refusal rate and the rate of answering unanswerable questions."""
    return ((answerable < cut).mean() + (unanswerable >= cut).mean()) / 2


def best_cut(answerable: Sequence[float], unanswerable: Sequence[float]) -> tuple[float, float]:
    """``(cut, balanced error)`` of the best threshold between two score sets.

    Candidates are midpoints between consecutive distinct scores (and "never
    refuse"); among equally good cuts the lowest wins (fewer false refusals).

    >>> best_cut([0.6, 0.7, 0.8], [0.1, 0.2, 0.65])
    (0.4, 0.16666666666666666)
    """
    yes, no = np.asarray(answerable, float), np.asarray(unanswerable, float)
    values = np.unique(np.concatenate([yes, no]))
    cuts = [NEVER, *((values[:-1] + values[1:]) / 2)]
    errors = [balanced_error(yes, no, cut) for cut in cuts]
    best = int(np.argmin(errors))
    return float(cuts[best]), float(errors[best])


def _score(row: dict, name: str) -> float:
    return NEVER if row[name] is None else row[name]


def tune_thresholds(answerable_rows: Sequence[dict], unanswerable_rows: Sequence[dict]) -> dict:
    """The two refusal thresholds from dev rows answered with ``(NEVER, NEVER)``.

    Questions refused for being out of scope (:func:`~dl2llm.rag.evidence.out_of_scope`)
    are refused whatever the thresholds, so they do not move them. The
    retrieval threshold is fitted first; the evidence threshold then on the
    questions that pass it.
    """
    yes = [r for r in answerable_rows if not r.get("out_of_scope")]
    no = [r for r in unanswerable_rows if not r.get("out_of_scope")]
    confidence, _ = best_cut([r["confidence"] for r in yes], [r["confidence"] for r in no])
    passed_yes = [r for r in yes if r["confidence"] >= confidence]
    passed_no = [r for r in no if r["confidence"] >= confidence]
    evidence, _ = best_cut(
        [_score(r, "evidence_score") for r in passed_yes],
        [_score(r, "evidence_score") for r in passed_no],
    )

    def answered(row: dict) -> bool:
        return (
            not row.get("out_of_scope")
            and row["confidence"] >= confidence
            and _score(row, "evidence_score") >= evidence
        )

    false_refusals = float(np.mean([not answered(r) for r in answerable_rows]))
    wrongly_answered = float(np.mean([answered(r) for r in unanswerable_rows]))
    return {
        "min_confidence": confidence,
        "min_evidence": evidence,
        "dev_false_refusal_rate": false_refusals,
        "dev_unanswerable_answered_rate": wrongly_answered,
        "dev_balanced_error": (false_refusals + wrongly_answered) / 2,
        "dev_answerable": len(answerable_rows),
        "dev_unanswerable": len(unanswerable_rows),
        "questions_sha256": questions_hash(),
    }


def questions_hash() -> str:
    """SHA-256 of the question files, so a threshold file names the data it was tuned on."""
    digest = hashlib.sha256()
    for name in (*ANSWERABLE_FILES, UNANSWERABLE_FILE, OFF_TOPIC_FILE):
        digest.update((QA_DIR / name).read_bytes())
    return digest.hexdigest()


def save_thresholds(tuned: dict) -> None:
    """Write the tuned thresholds where the service reads them (:data:`DEV_THRESHOLDS`)."""
    atomic_write_json(DEV_THRESHOLDS, tuned)
