"""The evaluation metrics against hand-computed values of their published definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dl2llm.evaluation import metrics


def test_recall_and_reciprocal_rank():
    ranked = [5, 1, 7, 9]
    assert metrics.recall_at_k(ranked, {9}, 3) == 0.0
    assert metrics.recall_at_k(ranked, {9}, 4) == 1.0
    assert metrics.reciprocal_rank(ranked, {7, 9}) == pytest.approx(1 / 3)
    assert metrics.reciprocal_rank(ranked, {9}, k=3) == 0.0


def test_ndcg_counts_unretrieved_gold_in_the_ideal():
    # gold {1, 42}: 1 is at rank 2, 42 never retrieved.
    dcg = 1 / math.log2(3)
    ideal = 1 + 1 / math.log2(3)
    assert metrics.ndcg_at_k([5, 1, 7], {1, 42}, 10) == pytest.approx(dcg / ideal, abs=1e-12)
    assert metrics.ndcg_at_k([1, 42, 7], {1, 42}, 10) == pytest.approx(1.0)
    assert metrics.ndcg_at_k([5, 6], {1}, 10) == 0.0


def test_squad_normalisation_em_and_f1():
    # Values computed with the SQuAD v1.1 evaluate-v1.1.py definitions.
    assert metrics.normalize_answer("The  Cat, sat!  ") == "cat sat"
    assert metrics.exact_match("the cat sat.", "A cat sat") == 1.0
    assert metrics.exact_match("cat", "dog") == 0.0
    assert metrics.token_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    assert metrics.token_f1("cat cat", "cat") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert metrics.token_f1("nothing shared", "cat") == 0.0


def _bag_of_words(texts):
    vocabulary = ["pdb", "debugger", "python", "list", "sort", "bread"]
    rows = np.array([[t.lower().count(w) for w in vocabulary] for t in texts], dtype=float)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)  # (n, V)


def test_groundedness_is_share_of_supported_sentences():
    passages = ["The pdb module is a debugger for Python.", "Use list.sort to sort a list."]
    answer = "Use the pdb debugger [1]. Bake bread at home."
    assert metrics.groundedness(answer, passages, _bag_of_words, 0.5) == pytest.approx(0.5)
    assert metrics.groundedness("Yes", passages, _bag_of_words) is None


def test_citation_accuracy_and_refusal():
    assert metrics.citation_accuracy("A [1]. B [2].", [True, False, False]) == 0.5
    assert metrics.citation_accuracy("A [5].", [True]) == 0.0
    assert metrics.citation_accuracy("no citations", [True]) is None
    assert metrics.is_refusal("Sorry, I don't know.")
    assert not metrics.is_refusal("Use pdb [1].")


def test_bootstrap_interval_and_latency():
    constant = metrics.bootstrap_interval([0.5] * 10)
    assert constant == {"mean": 0.5, "low": 0.5, "high": 0.5, "n": 10}
    spread = metrics.bootstrap_interval([0.0, 1.0] * 20, seed=1)
    assert spread["low"] < 0.5 < spread["high"]
    assert spread["low"] > 0.3 and spread["high"] < 0.7
    assert metrics.bootstrap_interval([None, 1.0])["n"] == 1
    assert metrics.latency_percentiles(list(range(1, 101))) == {"p50_ms": 50.5, "p95_ms": 95.05}
