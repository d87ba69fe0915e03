"""The week 3 lesson around the static models: GloVe 6B, the corpus, the learning curve."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dl2llm.embeddings import corpus, lesson
from dl2llm.embeddings.glove import glove_weight
from dl2llm.embeddings.keyed import to_keyed_vectors
from dl2llm.embeddings.pretrained import load_glove_6b
from dl2llm.runtime import UsageError

# The first line of Stanford's glove.6B.50d.txt, first ten numbers.
STANFORD_THE = [0.418, 0.24968, -0.41242, 0.1217, 0.34527, -0.044457, -0.49688, -0.17862,
                -0.00066023, -0.6566]  # fmt: skip


@pytest.fixture(scope="module")
def glove_6b():
    return load_glove_6b(20_000)


def test_glove_6b_matches_stanford_and_solves_king_queen(glove_6b):
    assert len(glove_6b.index_to_key) == 20_000 and glove_6b.vector_size == 50
    assert glove_6b.index_to_key[:5] == ["the", ",", ".", "of", "to"]
    np.testing.assert_allclose(glove_6b["the"][:10], STANFORD_THE, atol=1e-6)
    rows = lesson.king_queen_rows({lesson.GLOVE_6B: glove_6b})
    assert lesson.top_answer(rows[0]) == "queen"
    with pytest.raises(UsageError, match="top_n"):
        load_glove_6b(0)


def test_glove_weight_with_x_max_10():
    x = torch.tensor([1.0, 5.0, 10.0, 40.0])
    expected = torch.tensor([0.1**0.75, 0.5**0.75, 1.0, 1.0])
    torch.testing.assert_close(glove_weight(x, x_max=10.0), expected, atol=1e-7, rtol=0)
    assert lesson.EmbeddingsDemoConfig().glove["x_max"] == 10.0


def test_corpus_fractions_are_nested_seeded_and_mixed():
    sentences = [[f"s{i}", "x"] for i in range(80)]
    parts = lesson.corpus_fractions(sentences, (0.125, 0.25, 0.5, 1.0), seed=3)
    assert [len(p) for p in parts.values()] == [10, 20, 40, 80]
    assert parts[0.25][:10] == parts[0.125] and parts[1.0][:40] == parts[0.5]
    assert sorted(map(tuple, parts[1.0])) == sorted(map(tuple, sentences))
    assert parts[0.125] != sentences[:10]  # shuffled, not the first sentences
    assert lesson.corpus_fractions(sentences, (0.125,), seed=3)[0.125] == parts[0.125]


def test_config_defaults_are_the_full_run_and_bad_fractions_fail():
    full, quick = lesson.EmbeddingsDemoConfig(), lesson.EmbeddingsDemoConfig.quick(seed=2)
    assert full.corpus == "full" and full.fractions == (0.125, 0.25, 0.5, 1.0)
    assert quick.corpus == "small" and quick.seed == 2
    assert quick.word2vec["epochs"] < full.word2vec["epochs"]
    assert {k: v for k, v in quick.word2vec.items() if k != "epochs"} == {
        k: v for k, v in full.word2vec.items() if k != "epochs"
    }
    with pytest.raises(UsageError, match="fractions"):
        lesson.EmbeddingsDemoConfig(fractions=(0.5, 1.5))


def test_full_corpus_is_general_english_without_python_docs():
    assert corpus.CORPORA["full"] == ("botchan", "lee", "wikipedia", "snippets")
    snippets = corpus.snippet_sentences()
    assert corpus.count_tokens(snippets) == 387_705
    wikipedia = corpus.wikipedia_sentences()
    assert corpus.count_tokens(wikipedia) == 452_558
    assert not any(s[0] == "redirect" for s in wikipedia)


def test_king_rows_summary_and_curve_gain():
    words = ["king", "man", "woman", "queen", "apple"]
    vectors = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=float)
    keyed = to_keyed_vectors(words, vectors)  # king - man + woman = (0, 1, 1) = queen
    tiny = to_keyed_vectors(["king"], np.ones((1, 3)))
    rows = lesson.king_queen_rows({lesson.GLOVE_6B: keyed, lesson.OURS: tiny}, topn=1)
    assert rows[0]["king - man + woman"].startswith("queen (")
    assert lesson.top_answer(rows[1]) == "(a word is not in the vocabulary)"

    curve = [
        {"fraction": f, "model": m, "analogy_accuracy": a, "wordsim_spearman": w}
        for f, m, a, w in [
            (1.0, lesson.OURS, 0.05, 0.3),
            (0.5, lesson.OURS, 0.02, 0.1),
            (0.5, lesson.GENSIM, 0.5, 0.5),
        ]  # fmt: skip
    ]
    assert lesson.curve_gain(curve, lesson.OURS, "analogy_accuracy") == pytest.approx(0.03)
    scores = {"analogy_accuracy": 0.1, "analogy_semantic_accuracy": 0.2,
              "analogy_syntactic_accuracy": 0.05, "wordsim_spearman": 0.4,
              "analogy_coverage": 0.5, "analogy_evaluated": 9, "wordsim_coverage": 0.8,
              "wordsim_evaluated": 7}  # fmt: skip
    table = [{"model": lesson.OURS, **scores}, {"model": lesson.GLOVE_6B, **scores}]
    metrics = lesson.summary_metrics(table, rows, curve)
    assert metrics["glove6b_king_man_woman_is_queen"] == 1.0
    assert metrics["word2vec_king_man_woman"] == "(a word is not in the vocabulary)"
    assert metrics["word2vec_curve_wordsim_gain"] == pytest.approx(0.2)
    assert (
        metrics["glove6b_analogy_coverage"] == 0.5 and metrics["word2vec_wordsim_spearman"] == 0.4
    )


def test_learning_curve_plot_is_a_png(tmp_path):
    curve = [
        {"fraction": f, "tokens": int(f * 1000), "model": m, "analogy_accuracy": f / 10,
         "wordsim_spearman": f / 5}
        for f in (0.5, 1.0) for m in lesson.CURVE_MODELS
    ]  # fmt: skip
    reference = {"analogy_accuracy": 0.5, "wordsim_spearman": 0.54}
    path = lesson.plot_learning_curve(curve, reference, tmp_path / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
