"""Word2Vec (SGNS) and GloVe from scratch: hand-computed cases and gensim as the reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gensim.models import Word2Vec

from dl2llm.embeddings.corpus import load_corpus, split_sentences
from dl2llm.embeddings.glove import cooccurrence_matrix, glove_loss, glove_weight, train_glove
from dl2llm.embeddings.vocab import (
    build_vocabulary,
    encode_corpus,
    keep_probabilities,
    noise_distribution,
)
from dl2llm.embeddings.word2vec import SkipGram, sgns_loss, skipgram_pairs, train_word2vec
from dl2llm.runtime import UsageError


def topic_corpus(n_topics: int = 6, words_per_topic: int = 5, seed: int = 0) -> list[list[str]]:
    """Sentences that each draw 8 words from one topic: topic mates are the obvious neighbours."""
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(150):
        for topic in range(n_topics):
            picks = rng.integers(0, words_per_topic, size=8)
            sentences.append([f"t{topic}w{k}" for k in picks])
    return sentences


def test_sgns_loss_matches_hand_computation():
    centre = torch.tensor([[1.0, 0.0]])  # v_c
    context = torch.tensor([[0.5, 0.5]])  # u_o: score 0.5
    negatives = torch.tensor([[[1.0, 0.0], [0.0, -1.0]]])  # scores 1.0 and 0.0
    expected = math.log1p(math.exp(-0.5)) + math.log1p(math.exp(1.0)) + math.log(2.0)
    assert sgns_loss(centre, context, negatives).item() == pytest.approx(expected, abs=1e-6)


def test_closed_form_sgd_step_equals_autograd():
    torch.manual_seed(0)
    model = SkipGram(7, 4)
    model.context = torch.randn(7, 4) * 0.3
    centres, contexts = torch.tensor([0, 1, 1, 3]), torch.tensor([2, 2, 5, 0])
    negatives = torch.tensor([[4, 4], [6, 0], [2, 1], [5, 5]])  # repeats must accumulate
    centre = model.centre.clone().requires_grad_()
    context = model.context.clone().requires_grad_()
    reference = sgns_loss(centre[centres], context[contexts], context[negatives]).sum()
    reference.backward()
    loss = model.sgd_step(centres, contexts, negatives, lr=0.1)
    assert loss == pytest.approx(reference.item(), abs=1e-6)
    torch.testing.assert_close(model.centre, centre.detach() - 0.1 * centre.grad, atol=1e-6, rtol=0)
    torch.testing.assert_close(
        model.context, context.detach() - 0.1 * context.grad, atol=1e-6, rtol=0
    )


def test_keep_probabilities_by_hand_and_as_in_gensim():
    # threshold = 0.1 * 1000 = 100: (sqrt(4) + 1) / 4 and (sqrt(5.5) + 1) / 5.5; rare word kept
    keep = keep_probabilities(np.array([400, 550, 50]), sample=0.1)
    np.testing.assert_allclose(keep, [0.75, (math.sqrt(5.5) + 1) / 5.5, 1.0], atol=1e-12)
    assert np.all(keep_probabilities(np.array([400, 600]), sample=0) == 1.0)

    sentences = load_corpus("botchan")
    vocab = build_vocabulary(sentences, min_count=5)
    reference = Word2Vec(min_count=5, sample=1e-3, vector_size=8)
    reference.build_vocab(sentences)
    assert sorted(reference.wv.index_to_key) == sorted(vocab.words)  # ties may order differently
    gensim_keep = np.array(
        [reference.wv.get_vecattr(w, "sample_int") for w in vocab.words], dtype=np.float64
    ) / (2**32 - 1)
    np.testing.assert_allclose(keep_probabilities(vocab.counts, 1e-3), gensim_keep, atol=1e-6)
    assert keep[0] < 0.8 and keep_probabilities(vocab.counts, 1e-3)[-1] == 1.0

    noise = noise_distribution(vocab.counts)
    gensim_noise = np.diff(reference.cum_table, prepend=0) / float(reference.cum_table[-1])
    gensim_rows = [reference.wv.key_to_index[w] for w in vocab.words]
    np.testing.assert_allclose(noise, gensim_noise[gensim_rows], atol=1e-8)


def test_noise_distribution_is_unigram_to_three_quarters():
    np.testing.assert_allclose(noise_distribution(np.array([16, 1])), [8 / 9, 1 / 9])


def test_vocabulary_order_and_encoding_drop_rare_words():
    sentences = [["b", "a", "a", "c"], ["a", "b", "z"]]
    vocab = build_vocabulary(sentences, min_count=2)
    assert vocab.words == ["a", "b"] and vocab.counts.tolist() == [3, 2]
    encoded = encode_corpus(sentences, vocab)
    assert encoded.ids.tolist() == [1, 0, 0, 0, 1]
    assert encoded.sentence_ids.tolist() == [0, 0, 0, 1, 1]
    with pytest.raises(UsageError, match="too small"):
        build_vocabulary(sentences, min_count=10)


def test_skipgram_pairs_stay_in_window_and_sentence():
    vocab = build_vocabulary([["a", "b", "c"], ["d", "e"]], min_count=1)
    corpus = encode_corpus([["a", "b", "c"], ["d", "e"]], vocab)
    rng = np.random.default_rng(0)
    centres, contexts = skipgram_pairs(corpus, window=1, rng=rng)
    pairs = {(vocab.words[c], vocab.words[o]) for c, o in zip(centres, contexts, strict=True)}
    expected = {("a", "b"), ("b", "a"), ("b", "c"), ("c", "b"), ("d", "e"), ("e", "d")}
    assert pairs == expected and len(centres) == 6
    centres, contexts = skipgram_pairs(corpus, window=2, rng=rng)
    pairs = {(vocab.words[c], vocab.words[o]) for c, o in zip(centres, contexts, strict=True)}
    assert expected <= pairs <= expected | {("a", "c"), ("c", "a")}


def test_cooccurrence_counts_weight_pairs_by_inverse_distance():
    sentences = [["a", "b", "c"], ["a", "c"]]
    vocab = build_vocabulary(sentences, min_count=1)
    assert vocab.words == ["a", "c", "b"]
    counts = cooccurrence_matrix(encode_corpus(sentences, vocab), len(vocab), window=2).toarray()
    # a-b and b-c at distance 1; a-c at distance 2 (0.5) in sentence 1 and 1 in sentence 2
    expected = np.array(
        [
            [0.0, 1.5, 1.0],
            [1.5, 0.0, 1.0],
            [1.0, 1.0, 0.0],
        ]
    )
    np.testing.assert_array_equal(counts, expected)
    window_one = cooccurrence_matrix(encode_corpus(sentences, vocab), len(vocab), window=1)
    assert window_one.toarray()[0, 1] == 1.0  # "c ." then "a" across sentences is not a pair


def test_glove_weighting_function():
    x = torch.tensor([1.0, 50.0, 100.0, 250.0])
    expected = torch.tensor([100.0**-0.75, 0.5**0.75, 1.0, 1.0])
    torch.testing.assert_close(glove_weight(x), expected, atol=1e-7, rtol=0)
    torch.testing.assert_close(
        glove_weight(torch.tensor([5.0]), x_max=10, alpha=1.0), torch.tensor([0.5])
    )


def test_glove_loss_by_hand():
    w, w_context = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5, -1.0]])  # dot -1.5
    b, b_context = torch.tensor([0.25]), torch.tensor([0.25])  # prediction -1.0
    loss = glove_loss(w, w_context, b, b_context, torch.tensor([1.0]), torch.tensor([0.5]))
    assert loss.item() == pytest.approx(0.5 * (-1.0 - 1.0) ** 2)


@pytest.mark.parametrize("trainer", ["word2vec", "glove"])
def test_trained_vectors_rank_topic_mates_first(trainer):
    sentences = topic_corpus()
    if trainer == "word2vec":
        keyed = train_word2vec(
            sentences,
            vector_size=16,
            min_count=1,
            sample=0,
            epochs=2,
            batch_size=256,
            progress=False,
        )
    else:
        keyed = train_glove(
            sentences,
            vector_size=16,
            window=5,
            min_count=1,
            x_max=10,
            epochs=10,
            batch_size=64,
            progress=False,
        )
    assert len(keyed.index_to_key) == 30 and keyed.vectors.shape == (30, 16)
    for word in keyed.index_to_key:
        neighbour, _ = keyed.most_similar(word, topn=1)[0]
        assert neighbour.split("w")[0] == word.split("w")[0], (word, neighbour)


def test_split_sentences_and_unknown_corpus():
    assert split_sentences("The cat sat. A dog ran! Why? I go home") == [
        ["the", "cat", "sat"],
        ["dog", "ran"],
        ["go", "home"],
    ]
    with pytest.raises(UsageError, match="unknown corpus 'klingon'"):
        load_corpus("klingon")


def test_bad_settings_are_usage_errors():
    with pytest.raises(UsageError, match="at least 1"):
        train_word2vec([["a", "b"]], min_count=1, window=0, progress=False)
    with pytest.raises(UsageError, match="min_count must be at least 1"):
        train_glove([["a", "b"]], min_count=0, progress=False)
