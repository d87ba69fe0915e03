"""The evaluation set, built reproducibly from the indexed corpus.

Every FAQ section whose title is a question becomes one item: the title is the
question, the section's chunks are the gold passages and its opening sentences
the gold answer. A hash of the question (not a random draw) puts each item in
the ``dev`` or the held-out ``test`` part, so the split never changes with the
seed, the order of the files or the size of the index; fine-tuning only ever
sees ``dev``. Off-topic questions, which the corpus cannot answer, measure
whether the system refuses.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from dl2llm.rag.index import Index
from dl2llm.rag.pipeline import OFF_TOPIC_QUESTIONS

TEST_SHARE = 0.3
GOLD_ANSWER_WORDS = 12


@dataclass(frozen=True)
class EvalItem:
    """One answerable question with its gold section."""

    question: str
    doc_id: str
    anchor: str
    gold_chunk_ids: frozenset[int]
    gold_answer: str
    split: str


def split_of(question: str, test_share: float = TEST_SHARE) -> str:
    """``"test"`` or ``"dev"``, decided by the SHA-256 of the question alone."""
    bucket = int(hashlib.sha256(question.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if bucket < test_share else "dev"


def gold_answer(text: str, min_words: int = GOLD_ANSWER_WORDS) -> str:
    """The section's opening sentences, enough to reach ``min_words`` words."""
    taken: list[str] = []
    for sentence in text.replace("\n", " ").split(". "):
        taken.append(sentence.strip().rstrip("."))
        if len(" ".join(taken).split()) >= min_words:
            break
    return ". ".join(taken) + "."


def faq_items(index: Index) -> list[EvalItem]:
    """One :class:`EvalItem` per FAQ question section of ``index``, in chunk id order."""
    sections: dict[tuple[str, str], list[int]] = {}
    for chunk_id in sorted(index.chunks):
        chunk = index.chunks[chunk_id]
        if chunk.doc_id.startswith("faq/") and chunk.title.endswith("?"):
            sections.setdefault((chunk.doc_id, chunk.anchor), []).append(chunk_id)
    items = []
    for (doc_id, anchor), ids in sections.items():
        first = index.chunks[ids[0]]
        question = first.title.rpartition(" > ")[2]
        answer = gold_answer(first.text)
        items.append(EvalItem(question, doc_id, anchor, frozenset(ids), answer, split_of(question)))
    return items


def split_items(items: list[EvalItem], split: str) -> list[EvalItem]:
    """The items of one split (``dev`` or ``test``)."""
    if split not in ("dev", "test"):
        raise ValueError(f"unknown split '{split}' (use dev or test)")
    return [item for item in items if item.split == split]


def unanswerable_questions() -> tuple[str, ...]:
    """Off-topic questions the Python docs cannot answer (for the refusal rate)."""
    return OFF_TOPIC_QUESTIONS
