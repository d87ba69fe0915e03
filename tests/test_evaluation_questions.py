"""The hand-written question sets: size, spread, verifiable key terms, a split by document."""

from __future__ import annotations

from collections import Counter

import pytest

from dl2llm.data import python_docs_dir
from dl2llm.evaluation import judge
from dl2llm.evaluation.questions import (
    FAITHFULNESS_LABELS,
    answerable,
    document_groups,
    hash_split,
    of_split,
    read_jsonl,
    unanswerable,
)
from dl2llm.rag.checks import supported


def test_sets_are_as_large_and_as_spread_as_promised():
    questions = answerable()
    documents = {doc for q in questions for doc in q.gold_docs}
    kinds = Counter(q.kind for q in unanswerable())
    assert len(questions) >= 150 and len(documents) >= 60
    assert kinds["third_party"] + kinds["newer_than_3.11"] >= 40 and kinds["off_topic"] >= 30
    assert sum(not q.names_api for q in questions) >= 2 * len(questions) / 3
    assert len({q.question for q in questions}) == len(questions)


def test_no_document_sits_on_both_sides_of_the_split():
    sides: dict[str, set[str]] = {}
    for question in answerable():
        for doc in question.gold_docs:
            sides.setdefault(doc, set()).add(question.split)
    assert all(len(split) == 1 for split in sides.values())
    dev, test = of_split(answerable(), "dev"), of_split(answerable(), "test")
    assert len(dev) >= 50 and len(test) >= 50 and len(dev) + len(test) == len(answerable())
    assert {q.split for q in unanswerable()} == {"dev", "test"}


def test_documents_asked_about_together_share_a_side():
    groups = document_groups([("a", "b"), ("c",), ("b", "d")])
    assert groups == {"a": "a", "b": "a", "c": "c", "d": "a"}
    assert hash_split("library/functools.rst") == hash_split("library/functools.rst")


def test_every_key_term_is_in_a_gold_document():
    texts = {}
    for question in answerable():
        for doc in question.gold_docs:
            texts.setdefault(doc, (python_docs_dir() / f"{doc}.txt").read_text())
        for term in question.key_terms:
            assert any(term in texts[doc] for doc in question.gold_docs), (question, term)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("`lru_cache(maxsize=128)`: If maxsize is set to None, the cache can grow. 【1】", True),
        ("An LRU cache keeps recent results. 【1】", False),
        ("I don't know.", False),
        ("Pass maxsizes to it.", False),
    ],
)
def test_key_term_judge(answer, expected):
    assert judge.names_key_term(answer, ["maxsize"]) is expected


def test_faithfulness_and_citation_accuracy_follow_the_cited_passage():
    passages = [
        "If maxsize is set to None, the LRU feature is disabled and the cache can grow "
        "without bound.",
        "The tomllib module parses TOML files.",
    ]
    right = "If maxsize is set to None, the cache can grow without bound. 【1】"
    wrong_source = "If maxsize is set to None, the cache can grow without bound. 【2】"
    assert judge.faithfulness(right, passages) == 1.0
    assert judge.faithfulness(wrong_source, passages) == 0.0
    assert judge.citation_accuracy(right, passages, ["maxsize"]) == 1.0
    assert judge.citation_accuracy(wrong_source, passages, ["maxsize"]) == 0.0
    assert judge.faithfulness("No citation here.", passages) == 0.0


def test_faithfulness_criterion_is_checked_against_fifty_hand_labels():
    labels = read_jsonl(FAITHFULNESS_LABELS)
    assert len(labels) >= 50 and all(isinstance(row["supported"], bool) for row in labels)
    assert 0 < sum(row["supported"] for row in labels) < len(labels)  # both verdicts occur
    result = judge.criterion_agreement(labels)
    agreeing = sum(supported(row["sentence"], row["passage"]) == row["supported"] for row in labels)
    assert result["n"] == len(labels) and result["agreement"] == agreeing / len(labels)
    assert result["agreement"] >= 0.8  # the criterion is only usable if it mostly agrees
