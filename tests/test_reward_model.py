"""Preference data and the Bradley-Terry reward model."""

from __future__ import annotations

import math

import pytest
import torch
from tiny import tiny_gpt

from dl2llm.alignment.preferences import (
    LexiconLabeler,
    build_preference_pairs,
    decode,
    review_prompts,
)
from dl2llm.alignment.reward import (
    RewardHead,
    bradley_terry_loss,
    pairwise_accuracy,
    train_reward_head,
)
from dl2llm.models import load_gpt2_tokenizer
from dl2llm.runtime import UsageError


def test_bradley_terry_loss_is_reward_trainers_loss():
    chosen = torch.tensor([2.0, 0.0, -1.0])
    rejected = torch.tensor([0.0, 0.0, 1.0])
    # trl RewardTrainer: -logsigmoid(r_chosen - r_rejected).mean() = mean(log(1 + exp(-margin)))
    expected = (math.log1p(math.exp(-2.0)) + math.log(2.0) + math.log1p(math.exp(2.0))) / 3
    assert bradley_terry_loss(chosen, rejected).item() == pytest.approx(expected, abs=1e-6)
    assert pairwise_accuracy(chosen, rejected) == pytest.approx(1 / 3)


def test_reward_head_recovers_a_hidden_linear_preference():
    generator = torch.Generator().manual_seed(0)
    direction = torch.randn(16, generator=generator)
    a, b = torch.randn(2, 600, 16, generator=generator)
    a_wins = (a - b) @ direction > 0
    flipped = torch.rand(600, generator=generator) < 0.1  # 10% label noise
    chosen_first = a_wins ^ flipped
    chosen = torch.where(chosen_first[:, None], a, b)
    rejected = torch.where(chosen_first[:, None], b, a)
    torch.manual_seed(0)
    result = train_reward_head(
        RewardHead(16), (chosen[:500], rejected[:500]), (chosen[500:], rejected[500:])
    )
    assert result.losses[-1] < result.losses[0]
    assert result.heldout_accuracy > 0.8  # the noise caps it near 0.9


def test_lexicon_labeler_counts_positive_minus_negative_words():
    scores = LexiconLabeler()(["A great, funny and moving film", "dull and boring, not good", ""])
    torch.testing.assert_close(scores, torch.tensor([3.0, -2.0, 0.0]))


def test_review_prompts_are_reproducible_and_equal_length():
    tokenizer = load_gpt2_tokenizer()
    prompts = review_prompts("train", 5, 6, tokenizer)
    assert prompts.shape == (5, 6)
    assert torch.equal(prompts, review_prompts("train", 5, 6, tokenizer))
    with pytest.raises(UsageError, match="snippets"):
        review_prompts("test", 10**6, 6, tokenizer)


class TokenCountLabeler:
    """Scores a text by how often the letter 'e' occurs: deterministic, rarely tied."""

    def __call__(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor([float(text.count("e")) for text in texts])


def _pairs(label_noise: float, seed: int = 0):
    policy = tiny_gpt()
    tokenizer = load_gpt2_tokenizer()
    prompts = review_prompts("train", 40, 4, tokenizer)
    generator = torch.Generator().manual_seed(seed)
    pairs = build_preference_pairs(
        policy, prompts, TokenCountLabeler(), tokenizer, 6, label_noise, generator
    )
    return pairs, tokenizer


def test_preference_pairs_follow_the_labeler_and_are_reproducible():
    pairs, tokenizer = _pairs(label_noise=0.0)
    labeler = TokenCountLabeler()
    chosen = labeler(decode(tokenizer, pairs.chosen))
    rejected = labeler(decode(tokenizer, pairs.rejected))
    assert (chosen >= rejected).all()
    assert torch.equal(pairs.noise_free, chosen > rejected)
    again, _ = _pairs(label_noise=0.0)
    assert torch.equal(pairs.chosen, again.chosen) and torch.equal(pairs.rejected, again.rejected)


def test_label_noise_flips_some_labels():
    noisy, tokenizer = _pairs(label_noise=0.3)
    labeler = TokenCountLabeler()
    chosen = labeler(decode(tokenizer, noisy.chosen))
    rejected = labeler(decode(tokenizer, noisy.rejected))
    flipped = (chosen < rejected).sum().item()
    assert 3 <= flipped <= 25  # about 30% of 40, minus ties
    assert not noisy.noise_free[chosen < rejected].any()
    with pytest.raises(UsageError, match="label noise"):
        _pairs(label_noise=0.5)


def test_best_of_k_pairs_pick_the_best_and_worst_sample():
    policy = tiny_gpt()
    tokenizer = load_gpt2_tokenizer()
    prompts = review_prompts("train", 40, 4, tokenizer)
    labeler = TokenCountLabeler()

    def margins(samples_per_prompt: int) -> torch.Tensor:
        pairs = build_preference_pairs(
            policy, prompts, labeler, tokenizer, 6, 0.0, torch.Generator().manual_seed(0),
            samples_per_prompt,
        )  # fmt: skip
        return labeler(decode(tokenizer, pairs.chosen)) - labeler(decode(tokenizer, pairs.rejected))

    two, four = margins(2), margins(4)
    assert (two >= 0).all() and (four >= 0).all()
    assert four.mean() > two.mean()  # the extremes of 4 samples lie further apart than 2
    with pytest.raises(UsageError, match="at least 2 samples"):
        margins(1)


def test_early_stopping_keeps_the_best_validation_epoch():
    generator = torch.Generator().manual_seed(0)
    direction = torch.randn(64, generator=generator)
    a, b = torch.randn(2, 160, 64, generator=generator)
    a_wins = (a - b) @ direction > 0
    flipped = torch.rand(160, generator=generator) < 0.2
    chosen = torch.where((a_wins ^ flipped)[:, None], a, b)
    rejected = torch.where((a_wins ^ flipped)[:, None], b, a)
    train, validation, heldout = (
        (chosen[s], rejected[s]) for s in (slice(0, 60), slice(60, 110), slice(110, 160))
    )
    torch.manual_seed(0)
    head = RewardHead(64)
    result = train_reward_head(head, train, heldout, epochs=400, validation=validation)
    assert 1 <= result.best_epoch < 400  # 60 noisy pairs in 64 dimensions overfit: it stopped
    with torch.no_grad():
        kept = bradley_terry_loss(head(validation[0]), head(validation[1])).item()
    torch.manual_seed(0)
    last = RewardHead(64)
    train_reward_head(last, train, heldout, epochs=400)
    with torch.no_grad():
        assert kept < bradley_terry_loss(last(validation[0]), last(validation[1])).item()
