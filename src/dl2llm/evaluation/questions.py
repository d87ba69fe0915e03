"""Hand-written questions, asked the way people ask them, split by document.

The FAQ set (:mod:`dl2llm.evaluation.dataset`) is easy to game: its questions
are the FAQ's own headings, which sit inside the chunks' titles. This set is
the one to trust. Every question in ``data/capstone_qa/`` was written by hand
the way a user would type it -- most do not name the API that answers them
("What itertools function yields overlapping pairs?" -> ``pairwise``) -- with

- ``gold_docs``: the document(s) whose text answers it;
- ``key_terms``: the API names a right answer must mention (any one of them);
- ``reference``: a one-sentence answer, for a reader.

Two kinds of question must be refused: in-domain ones the Python 3.11 docs
cannot answer (third-party libraries, features added after 3.11) and
off-topic ones.

The split into ``dev`` (prompts, thresholds and any tuning) and ``test`` (the
reported numbers) is **by document**: documents that share a question are
grouped (union-find), and a hash of a group's first document decides its
side, so no document -- and no paraphrase of a question about it -- sits on
both sides. Unanswerable and off-topic questions have no document; a hash of
the question decides.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from dl2llm import paths

QA_DIR = paths.DATA_DIR / "capstone_qa"
ANSWERABLE_FILES = ("answerable_a.jsonl", "answerable_b.jsonl", "answerable_c.jsonl")
UNANSWERABLE_FILE, OFF_TOPIC_FILE = "unanswerable.jsonl", "off_topic.jsonl"
FAITHFULNESS_LABELS = QA_DIR / "faithfulness_labels.jsonl"  # answer sentences judged by hand
TEST_SHARE = 0.5
SPLITS = ("dev", "test")


@dataclass(frozen=True)
class Question:
    """One answerable question: a right answer names one of ``key_terms``."""

    question: str
    gold_docs: tuple[str, ...]
    key_terms: tuple[str, ...]
    names_api: bool
    reference: str
    split: str


@dataclass(frozen=True)
class Unanswerable:
    """A question the docs cannot answer: ``kind`` is third_party, newer_than_3.11 or off_topic."""

    question: str
    kind: str
    split: str


def hash_split(key: str, test_share: float = TEST_SHARE) -> str:
    """``"test"`` or ``"dev"`` from the SHA-256 of ``key`` alone (stable across runs)."""
    bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if bucket < test_share else "dev"


def document_groups(gold: list[tuple[str, ...]]) -> dict[str, str]:
    """``{doc_id: group}``: documents named together by any question share a group.

    The group is named by its smallest document id (union-find).

    >>> document_groups([("a", "b"), ("c",), ("b", "d")])
    {'a': 'a', 'b': 'a', 'c': 'c', 'd': 'a'}
    """
    parent: dict[str, str] = {}

    def root(doc: str) -> str:
        parent.setdefault(doc, doc)
        while parent[doc] != doc:
            parent[doc] = parent[parent[doc]]
            doc = parent[doc]
        return doc

    for docs in gold:
        for other in docs[1:]:
            a, b = root(docs[0]), root(other)
            parent[max(a, b)] = min(a, b)
        root(docs[0])
    return {doc: root(doc) for doc in sorted(parent)}


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines file (blank lines skipped); a bad line names itself."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not JSON ({err})") from err
    return rows


@cache
def answerable(folder: Path = QA_DIR) -> tuple[Question, ...]:
    """Every hand-written answerable question, with its split."""
    rows = [row for name in ANSWERABLE_FILES for row in read_jsonl(folder / name)]
    groups = document_groups([tuple(row["gold_docs"]) for row in rows])
    return tuple(
        Question(
            question=row["question"],
            gold_docs=tuple(row["gold_docs"]),
            key_terms=tuple(row["key_terms"]),
            names_api=bool(row["names_api"]),
            reference=row["reference"],
            split=hash_split(groups[row["gold_docs"][0]]),
        )
        for row in rows
    )


@cache
def unanswerable(folder: Path = QA_DIR) -> tuple[Unanswerable, ...]:
    """In-domain unanswerable questions, then off-topic ones, each with its split."""
    in_domain = [
        Unanswerable(row["question"], row["kind"], hash_split(row["question"]))
        for row in read_jsonl(folder / UNANSWERABLE_FILE)
    ]
    off_topic = [
        Unanswerable(row["question"], "off_topic", hash_split(row["question"]))
        for row in read_jsonl(folder / OFF_TOPIC_FILE)
    ]
    return tuple(in_domain + off_topic)


def of_split(items, split: str) -> list:
    """The items of one split (``dev`` or ``test``)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}' (use dev or test)")
    return [item for item in items if item.split == split]
