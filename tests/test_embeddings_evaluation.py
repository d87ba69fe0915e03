"""Analogy and word-similarity evaluation: by hand and equal to gensim's own evaluators."""

from __future__ import annotations

import numpy as np
import pytest
from gensim.models import Word2Vec

from dl2llm.data import gensim_test_file
from dl2llm.embeddings import compare, projection
from dl2llm.embeddings.corpus import load_corpus
from dl2llm.embeddings.evaluation import (
    answer_analogies,
    evaluate,
    evaluate_analogies,
    evaluate_similarity,
    read_analogies,
    read_word_pairs,
)
from dl2llm.embeddings.keyed import to_keyed_vectors
from dl2llm.runtime import UsageError


@pytest.fixture(scope="module")
def small_model():
    """gensim CBOW on Botchan + Lee: enough vocabulary for a few hundred analogy questions."""
    return Word2Vec(load_corpus("small"), vector_size=32, min_count=5, epochs=1, seed=0, workers=1)


def test_test_sets_are_read_in_full():
    questions = read_analogies()
    assert len(questions) == 19544
    assert (questions[0].a, questions[0].b, questions[0].c, questions[0].expected) == (
        "athens",
        "greece",
        "baghdad",
        "iraq",
    )
    assert sum(q.semantic for q in questions) == 8869
    pairs = read_word_pairs()
    assert len(pairs) == 353 and pairs[0] == ("love", "sex", 6.77)


def test_3cosadd_by_hand_excludes_question_words():
    words = ["king", "queen", "man", "woman", "apple"]
    vectors = np.array(
        [
            [1.0, 1.0, 0.0],  # king = royal + male
            [1.0, 0.0, 1.0],  # queen = royal + female
            [0.0, 1.0, 0.0],  # man
            [0.0, 0.0, 1.0],  # woman
            [-1.0, 0.2, 0.2],  # apple
        ]
    )
    keyed = to_keyed_vectors(words, vectors)
    assert answer_analogies(keyed, [("man", "king", "woman"), ("king", "man", "queen")]) == [
        "queen",
        "woman",
    ]


def test_analogies_equal_gensim(small_model):
    keyed = small_model.wv
    ours = evaluate_analogies(keyed)
    score, sections = keyed.evaluate_word_analogies(str(gensim_test_file("questions-words.txt")))
    total = sections[-1]
    assert ours.n_evaluated == len(total["correct"]) + len(total["incorrect"]) > 300
    assert ours.n_correct == len(total["correct"])
    assert ours.accuracy == pytest.approx(score, abs=1e-12)
    assert ours.coverage == pytest.approx(ours.n_evaluated / 19544)


def test_similarity_equals_gensim(small_model):
    keyed = small_model.wv
    ours = evaluate_similarity(keyed)
    _, (spearman, _), oov_percent = keyed.evaluate_word_pairs(
        str(gensim_test_file("wordsim353.tsv"))
    )
    assert ours.spearman == pytest.approx(spearman, abs=1e-9)
    assert 100 * (1 - ours.coverage) == pytest.approx(oov_percent, abs=1e-9)
    assert ours.n_evaluated > 50


def test_similarity_on_a_perfect_model_is_one():
    pairs = [("a", "b", 9.0), ("a", "c", 5.0), ("a", "d", 1.0), ("a", "zzz", 3.0)]
    vectors = np.array([[1.0, 0.0], [1.0, 0.1], [1.0, 1.0], [0.0, 1.0]])
    result = evaluate_similarity(to_keyed_vectors(["a", "b", "c", "d"], vectors), pairs)
    assert result.spearman == pytest.approx(1.0)
    assert result.n_evaluated == 3 and result.coverage == 0.75


def test_evaluate_reports_scores_with_coverage(small_model):
    metrics = evaluate(small_model.wv)
    assert set(metrics) >= {
        "analogy_accuracy",
        "analogy_coverage",
        "wordsim_spearman",
        "wordsim_coverage",
    }
    assert 0 < metrics["analogy_coverage"] < 0.1
    assert 0.2 < metrics["wordsim_coverage"] < 0.6


def test_comparison_rows_skip_unknown_words_and_ratio_guards_zero():
    words = ["king", "queen", "man", "woman"]
    keyed = to_keyed_vectors(words, np.array([[1.0, 1.0], [1.0, -1.0], [0.1, 1.0], [0.1, -1.0]]))
    rows = compare.analogy_rows(
        {"toy": keyed}, [("man", "king", "woman", "queen"), ("man", "king", "girl", "princess")]
    )
    assert rows == [{"question": "man : king :: woman : ?", "expected": "queen", "toy": "queen"}]
    assert compare.markdown_table(rows).splitlines()[2] == (
        "| man : king :: woman : ? | queen | queen |"
    )
    assert compare.score_ratio(0.045, 0.05) == 0.9 and compare.score_ratio(0.1, 0.0) is None


def test_projections_and_plot_file(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(12, 8))
    assert projection.project(vectors, "pca").shape == (12, 2)
    assert projection.project(vectors, "tsne").shape == (12, 2)
    with pytest.raises(UsageError, match="unknown projection 'umap'"):
        projection.project(vectors, "umap")
    keyed = to_keyed_vectors([f"w{i}" for i in range(12)], vectors)
    groups = projection.known_groups(
        {"a": ["w0", "w1", "nope"], "b": ["w2", "w3"], "c": ["x"]}, [keyed]
    )
    assert groups == {"a": ["w0", "w1"], "b": ["w2", "w3"]}
    path = projection.plot_projections({"toy": keyed}, groups, "pca", tmp_path / "plot.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
