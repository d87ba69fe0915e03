"""Interpolated Kneser-Ney: a proper distribution, and the continuation-count idea."""

from __future__ import annotations

import math

import pytest

from dl2llm.nn.ngram import KneserNeyLM

TOKENS = "the cat sat on the mat . the dog sat on the log . a cat ate the fish .".split()


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("context", [(), ("the",), ("sat", "on"), ("zzz", "unseen"), ("on", "the")])
def test_probabilities_sum_to_one(order, context):
    lm = KneserNeyLM(order).fit(TOKENS)
    assert sum(lm.prob(w, context) for w in lm.vocab) == pytest.approx(1.0, abs=1e-12)


def test_hand_computed_bigram_probability():
    lm = KneserNeyLM(2, discount=0.75).fit(TOKENS)
    # c(the .) = 5 with 5 types after "the" (cat, mat, dog, log, fish); c(the cat) = 1.
    # "cat" follows 2 distinct words (the, a) out of 17 distinct bigram types.
    p_cont = 2 / 17
    expected = (1 - 0.75) / 5 + 0.75 * 5 / 5 * p_cont
    assert lm.prob("cat", ["the"]) == pytest.approx(expected, abs=1e-12)


def test_perplexity_of_training_text_is_below_vocabulary_size():
    lm = KneserNeyLM(3).fit(TOKENS)
    ppl = lm.perplexity(TOKENS)
    assert 1.0 < ppl < len(lm.vocab)
    uniform = KneserNeyLM(1).fit(TOKENS)
    assert ppl < uniform.perplexity(TOKENS)
    assert math.isfinite(lm.perplexity(["never", "seen", *TOKENS[:3]]))


def test_distribution_sums_to_one_in_sorted_order():
    lm = KneserNeyLM(3).fit(TOKENS)
    dist = lm.distribution(["on", "the"])
    assert list(dist) == sorted(lm.vocab)
    assert sum(dist.values()) == pytest.approx(1.0, abs=1e-12)
    assert dist["mat"] == lm.prob("mat", ["on", "the"])


def test_sampler_returns_vocabulary_words_and_is_seeded():
    lm = KneserNeyLM(3).fit(TOKENS)
    words = lm.sample(["the"], 30, seed=1)
    assert len(words) == 30 and set(words) <= lm.vocab
    assert words == lm.sample(["the"], 30, seed=1)
    assert words != lm.sample(["the"], 30, seed=2)
    # a near-zero temperature picks the most likely word: "sat on" is always followed by "the"
    assert lm.sample(["sat", "on"], 1, temperature=0.01)[0] == "the"
    with pytest.raises(ValueError, match="temperature"):
        lm.sample(["the"], 3, temperature=0)
