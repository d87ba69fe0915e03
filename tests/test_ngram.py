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
