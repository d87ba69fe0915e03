"""The RAG pipeline: retrieve, decide whether to answer, generate with citations.

A grounded system should refuse rather than invent when the corpus has nothing
relevant. We make that decision *before* generating, from the retrieval
confidence (the best dense cosine, see :class:`~dl2llm.rag.retrieve.Retrieval`):
below a threshold the answer is "I don't know". The threshold is calibrated,
not guessed: :func:`calibrate_threshold` picks the cut that best separates the
confidences of questions the corpus answers (the FAQ's own question headings,
scored against the *rest* of the corpus so that a question never finds itself)
from those of off-topic questions, by balanced accuracy. The result is saved
next to the index (``calibration.json``) and used from then on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dl2llm.io import atomic_write_json
from dl2llm.rag.generate import (
    CONTEXT_PASSAGES,
    IDK,
    ExtractiveGenerator,
    LLMGenerator,
    drop_unknown_citations,
    missing_citations,
)
from dl2llm.rag.index import INDEX_FOLDER, Encoder, Index
from dl2llm.rag.retrieve import Hit, Retriever

DEFAULT_MIN_CONFIDENCE = 0.35
CALIBRATION = "calibration.json"

OFF_TOPIC_QUESTIONS = (
    "What is the capital of France?",
    "How many players are on a football team?",
    "Who painted the Mona Lisa?",
    "What is the boiling point of water at sea level?",
    "How do I bake sourdough bread?",
    "When did the Roman Empire fall?",
    "What is the tallest mountain in Africa?",
    "How do vaccines train the immune system?",
    "Who wrote Pride and Prejudice?",
    "What is the best way to learn the guitar?",
    "How far is the Moon from the Earth?",
    "Which planet has the most moons?",
    "How do I change a flat tyre on a bicycle?",
    "What causes the northern lights?",
    "What is the population of Tokyo?",
    "How long should I boil an egg?",
    "Who won the 1998 World Cup?",
    "What is photosynthesis?",
    "How do I treat a sunburn?",
    "What language is spoken in Brazil?",
    "Why is the sky blue?",
    "How do whales communicate?",
    "What is the plot of Hamlet?",
    "How much does an elephant weigh?",
    "What is the recipe for a margarita?",
    "How do I train my dog to sit?",
    "What year did the Berlin Wall fall?",
    "How do tides work?",
    "What is the difference between a cello and a violin?",
    "Who discovered penicillin?",
)


@dataclass
class Answer:
    """What the pipeline returns: the text, its sources and where the time went."""

    question: str
    text: str
    hits: list[Hit]
    confidence: float
    refused: bool
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Prepared:
    """A question after retrieval, before generation."""

    question: str
    hits: list[Hit]
    confidence: float
    refused: bool
    retrieve_ms: float


class RAGPipeline:
    """``ask(question, k, mode)``: retrieval, a refusal check, grounded generation."""

    def __init__(
        self,
        retriever: Retriever,
        generator: LLMGenerator | ExtractiveGenerator,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    ):
        self.retriever = retriever
        self.generator = generator
        self.min_confidence = min_confidence

    def prepare(self, question: str, k: int = 5, mode: str = "hybrid") -> Prepared:
        """Retrieve and decide whether to answer."""
        found = self.retriever.search(question, k, mode)
        refused = found.confidence < self.min_confidence
        return Prepared(question, found.hits, found.confidence, refused, 1000 * found.seconds)

    def stream(self, prepared: Prepared, max_new_tokens: int | None = None) -> Iterator[str]:
        """The answer's text in pieces (one piece, "I don't know.", when refused).

        Citations of passages the generator never saw are dropped, and an
        answer that cites nothing gets its citations attributed at the end (see
        :func:`~dl2llm.rag.generate.drop_unknown_citations` and
        :func:`~dl2llm.rag.generate.missing_citations`).
        """
        if prepared.refused:
            yield IDK
            return
        pieces = []
        generated = self.generator.stream(prepared.question, prepared.hits, max_new_tokens)
        shown = min(len(prepared.hits), CONTEXT_PASSAGES)
        for piece in drop_unknown_citations(generated, shown):
            pieces.append(piece)
            yield piece
        if suffix := missing_citations("".join(pieces), prepared.hits):
            yield suffix

    def ask(
        self, question: str, k: int = 5, mode: str = "hybrid", max_new_tokens: int | None = None
    ) -> Answer:
        """Answer ``question`` in one go (see :meth:`prepare` and :meth:`stream`)."""
        started = time.perf_counter()
        prepared = self.prepare(question, k, mode)
        generated = time.perf_counter()
        text = "".join(self.stream(prepared, max_new_tokens)).strip()
        finished = time.perf_counter()
        timings = {
            "retrieve_ms": prepared.retrieve_ms,
            "generate_ms": 1000 * (finished - generated),
            "total_ms": 1000 * (finished - started),
        }
        return Answer(question, text, prepared.hits, prepared.confidence, prepared.refused, timings)


def load_min_confidence(data_dir: str | Path) -> float:
    """The calibrated threshold saved next to the index, else the default."""
    path = Path(data_dir) / INDEX_FOLDER / CALIBRATION
    if not path.is_file():
        return DEFAULT_MIN_CONFIDENCE
    return float(json.loads(path.read_text())["threshold"])


def faq_questions(index: Index) -> list[tuple[str, str, str]]:
    """``(question, doc_id, anchor)`` for every FAQ section whose title is a question."""
    seen = {}
    for chunk in index.chunks.values():
        question = chunk.title.rpartition(" > ")[2]
        if chunk.doc_id.startswith("faq/") and question.endswith("?"):
            seen.setdefault((chunk.doc_id, chunk.anchor), question)
    return [(question, doc_id, anchor) for (doc_id, anchor), question in seen.items()]


def held_out_confidence(
    index: Index, encoder: Encoder, questions: Sequence[tuple[str, str, str]]
) -> list[float]:
    """Best cosine of each question to chunks *outside* its own FAQ section."""
    vectors = encoder.encode([q for q, _, _ in questions])  # (Q, dim)
    results = index.search_dense(vectors, 20)
    scores = []
    for (_, doc_id, anchor), ranked in zip(questions, results, strict=True):
        other = [
            s
            for i, s in ranked
            if (index.chunks[i].doc_id, index.chunks[i].anchor) != (doc_id, anchor)
        ]
        scores.append(other[0] if other else 0.0)
    return scores


def best_threshold(positives: Sequence[float], negatives: Sequence[float]) -> tuple[float, float]:
    """``(threshold, balanced_accuracy)`` of the cut that best separates the two score sets.

    Candidates are midpoints between consecutive distinct scores; a score
    ``>= threshold`` counts as answerable.
    """
    positives, negatives = np.asarray(positives), np.asarray(negatives)
    values = np.unique(np.concatenate([positives, negatives]))
    cuts = (values[:-1] + values[1:]) / 2 if len(values) > 1 else values
    accuracy = [
        ((positives >= c).mean() + (negatives < c).mean()) / 2 for c in cuts
    ]  # balanced: each class weighs the same
    best = int(np.argmax(accuracy))
    return float(cuts[best]), float(accuracy[best])


def calibrate_threshold(index: Index, encoder: Encoder, save: bool = True) -> dict:
    """Fit the refusal threshold on FAQ questions vs off-topic questions; save it."""
    questions = faq_questions(index)
    if not questions:
        raise ValueError("calibration needs FAQ question headings (faq/*.rst) in the index")
    positives = held_out_confidence(index, encoder, questions)
    negatives = [r[0][1] for r in index.search_dense(encoder.encode(OFF_TOPIC_QUESTIONS), 1)]
    threshold, accuracy = best_threshold(positives, negatives)
    result = {
        "threshold": threshold,
        "balanced_accuracy": accuracy,
        "answerable_questions": len(positives),
        "off_topic_questions": len(negatives),
        "answerable_median": float(np.median(positives)),
        "off_topic_median": float(np.median(negatives)),
    }
    if save:
        atomic_write_json(index.folder / CALIBRATION, result)
    return result


def section_recall(
    retriever: Retriever, questions: Sequence[tuple[str, str, str]], k: int, mode: str
) -> dict[str, float]:
    """Recall@k and MRR of finding each FAQ question's own section, and query latency.

    A sanity check of the retrievers (the question text is the section's title,
    so this is an easy test); the capstone's evaluation adds paraphrased questions.
    """
    ranks, seconds = [], []
    for question, doc_id, anchor in questions:
        found = retriever.search(question, k, mode)
        seconds.append(found.seconds)
        positions = [
            n for n, hit in enumerate(found.hits, 1) if (hit.doc_id, hit.anchor) == (doc_id, anchor)
        ]
        ranks.append(positions[0] if positions else None)
    return {
        "recall": float(np.mean([r is not None for r in ranks])),
        "mrr": float(np.mean([1 / r if r else 0.0 for r in ranks])),
        "p50_ms": float(1000 * np.median(seconds)),
    }
