"""The FAQ evaluation set: deterministic split, gold passages, no test leakage."""

from __future__ import annotations

import pytest
from test_serve_fixtures import sample_index_dir

from dl2llm.evaluation import dataset
from dl2llm.rag.index import Index


def test_split_depends_only_on_the_question():
    assert dataset.split_of("How do I make Python scripts executable?") == "test"
    assert dataset.split_of("How do I run a Python program under Windows?") == "dev"
    assert dataset.gold_answer("Yes. It works. More text here.", min_words=3) == "Yes. It works."


def test_faq_items_of_the_sample_index():
    index = Index.load(sample_index_dir())
    items = dataset.faq_items(index)
    questions = {item.question: item for item in items}
    assert len(items) == 9 and all(item.doc_id == "faq/windows.rst" for item in items)
    item = questions["How do I make Python scripts executable?"]
    assert item.split == "test"
    assert all(index.chunks[i].anchor == item.anchor for i in item.gold_chunk_ids)
    assert len(dataset.split_items(items, "test")) == 3
    with pytest.raises(ValueError, match="unknown split"):
        dataset.split_items(items, "train")
    assert "What is the capital of France?" in dataset.unanswerable_questions()
