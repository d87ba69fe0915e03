"""The RAG pipeline: retrieve, decide whether to answer, answer from the evidence.

A grounded system should refuse rather than invent when the corpus has nothing
relevant. We make that decision *before* generating, from three signals:
the question names something the docs do not document
(:func:`~dl2llm.rag.evidence.out_of_scope`: a third-party package, a feature
after 3.11), the retrieval confidence (the best dense cosine, see
:class:`~dl2llm.rag.retrieve.Retrieval`) is below a threshold, or the best
evidence sentence (:func:`~dl2llm.rag.evidence.select_evidence`) is. Then the
answer says so instead of guessing. The retrieval threshold is calibrated,
not guessed: :func:`calibrate_threshold` picks the cut that best separates the
confidences of questions the corpus answers (the FAQ's own question headings,
scored against the *rest* of the corpus so that a question never finds itself)
from those of off-topic questions, by balanced accuracy. The result is saved
next to the index (``calibration.json``) and used from then on.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from dl2llm import paths
from dl2llm.io import atomic_write_json
from dl2llm.rag.encoder import Encoder
from dl2llm.rag.evidence import (
    EVIDENCE_CANDIDATES,
    Evidence,
    out_of_scope,
    select_evidence,
    shown_passages,
)
from dl2llm.rag.generate import IDK, Generator
from dl2llm.rag.index import Index
from dl2llm.rag.retrieve import Hit, Retriever

DEFAULT_MIN_CONFIDENCE = 0.35
DEFAULT_MIN_EVIDENCE = 0.0  # the best evidence sentence's score below which we refuse
WARM_UP_QUESTION = "How do I read a file line by line?"  # answered once before serving
CALIBRATION = "calibration.json"
DOCS_URL = "https://docs.python.org/3.11/"
DEV_THRESHOLDS = paths.DATA_DIR / "capstone_qa" / "thresholds.json"

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
    """A question after retrieval, before generation.

    ``evidence``: the passages' sentences, best first (empty when refused
    before it was needed); ``out_of_scope``: what the question asks about that
    the docs do not document.
    """

    question: str
    hits: list[Hit]
    confidence: float
    refused: bool
    retrieve_ms: float
    evidence: list[Evidence] = field(default_factory=list)
    out_of_scope: list[str] = field(default_factory=list)
    retrieval: str = "hybrid"  # the mode that ran ("bm25" while the dense index builds)
    cancel: threading.Event = field(default_factory=threading.Event)  # set: stop generating


def refusal(prepared: Prepared) -> str:
    """What a refused question is told: what is not covered, or "I don't know."."""
    if prepared.out_of_scope:
        names = ", ".join(prepared.out_of_scope)
        return f"I don't know: the Python 3.11 documentation does not cover {names}."
    return IDK


class RAGPipeline:
    """``ask(question, k, mode)``: retrieval, a refusal check, an answer from the evidence."""

    def __init__(
        self,
        retriever: Retriever,
        generator: Generator,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        min_evidence: float = DEFAULT_MIN_EVIDENCE,
        scope_check: bool = True,
    ):
        self.retriever = retriever
        self.generator = generator
        self.min_confidence = min_confidence
        self.min_evidence = min_evidence
        self.scope_check = scope_check  # refuse questions about what the docs do not cover

    def source_url(self, hit: Hit) -> str | None:
        """The web page of ``hit`` when the index holds the bundled Python docs, else None."""
        from dl2llm.data import python_docs_dir

        if self.retriever.index.manifest.get("source") != str(python_docs_dir()):
            return None
        page = hit.doc_id.removesuffix(".rst")
        return f"{DOCS_URL}{page}.html" + (f"#{hit.anchor}" if hit.anchor else "")

    def prepare(self, question: str, k: int = 5, mode: str = "hybrid") -> Prepared:
        """Retrieve, pick the evidence, and decide whether to answer."""
        uses_evidence = bool(self.generator.uses_evidence)
        pool = max(k, EVIDENCE_CANDIDATES) if uses_evidence else k
        found = self.retriever.search(question, pool, mode)
        prepared = Prepared(question, found.hits[:k], found.confidence, False, 0.0)
        prepared.retrieval = found.mode
        index = self.retriever.index
        if self.scope_check:
            prepared.out_of_scope = out_of_scope(question, index.modules, index.names)
        confident = found.confidence >= self.min_confidence
        if not prepared.out_of_scope and confident and uses_evidence:
            evidence = select_evidence(question, found.hits, self.retriever.encoder.encode_short)
            prepared.hits, prepared.evidence = shown_passages(found.hits, evidence, k)
        weak = uses_evidence and (
            not prepared.evidence or prepared.evidence[0].score < self.min_evidence
        )
        prepared.refused = bool(prepared.out_of_scope) or not confident or weak
        prepared.retrieve_ms = 1000 * found.seconds
        return prepared

    def warm_up(self) -> None:
        """Answer one question and drop it: the first answer pays ~2 s of one-time setup
        (the encoder's first runs), which should not fall on a user."""
        self.ask(WARM_UP_QUESTION)

    def stream(self, prepared: Prepared, max_new_tokens: int | None = None) -> Iterator[str]:
        """The answer's text in pieces (one piece, the refusal, when refused)."""
        if prepared.refused:
            yield refusal(prepared)
            return
        yield from self.generator.stream(prepared, max_new_tokens)

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


def load_thresholds(index: Index) -> tuple[float, float]:
    """``(min_confidence, min_evidence)`` for ``index``.

    An index of the bundled Python docs uses the thresholds tuned on the
    evaluation's dev questions (:data:`DEV_THRESHOLDS`, written by
    ``capstone/evaluation_metrics.py --tune``); another corpus uses the
    retrieval threshold calibrated when it was built, else the defaults.
    """
    from dl2llm.data import python_docs_dir

    if index.manifest.get("source") == str(python_docs_dir()) and DEV_THRESHOLDS.is_file():
        tuned = json.loads(DEV_THRESHOLDS.read_text())
        return float(tuned["min_confidence"]), float(tuned["min_evidence"])
    path = index.folder / CALIBRATION if index.folder is not None else None
    if path is None or not path.is_file():
        return DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_EVIDENCE
    return float(json.loads(path.read_text())["threshold"]), DEFAULT_MIN_EVIDENCE


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
