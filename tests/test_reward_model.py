"""Preference data and the Bradley-Terry reward model."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoTokenizer

from dl2llm.alignment.preferences import (
    EVAL_TOPICS,
    TRAIN_TOPICS,
    LexiconLabeler,
    Requests,
    TrueReward,
    lexicon_counts,
    rank_pairs,
    review_requests,
)
from dl2llm.alignment.reward import (
    RewardHead,
    RewardModel,
    TextEncoder,
    bradley_terry_loss,
    pairwise_accuracy,
    train_reward_head,
)
from dl2llm.models import llm_path
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
    texts = ["A great, funny and moving film", "dull and boring, not good", ""]
    torch.testing.assert_close(lexicon_counts(texts), torch.tensor([3.0, -2.0, 0.0]))
    torch.testing.assert_close(
        LexiconLabeler()(texts), torch.sigmoid(torch.tensor([3.0, -2.0, 0.0]))
    )


def test_true_reward_reads_the_prompt():
    reward = TrueReward(LexiconLabeler())
    same = ["A great, funny and moving film"] * 2
    scores = reward(torch.tensor([1, 0]), same)  # asked positive, then negative
    torch.testing.assert_close(
        scores, torch.tensor([1 / (1 + math.exp(-3)), 1 / (1 + math.exp(3))])
    )
    assert scores[0] > 0.9 > 0.1 > scores[1]


def test_review_requests_have_equal_length_and_both_polarities():
    tokenizer = AutoTokenizer.from_pretrained(llm_path())
    requests = review_requests(TRAIN_TOPICS, tokenizer)
    assert requests.ids.shape == (len(requests), 20)
    assert len(requests) >= 40 and requests.polarity.tolist()[:4] == [0, 1, 0, 1]
    assert requests.texts[1] == "Write a positive review of the film in one sentence."
    assert not set(TRAIN_TOPICS) & set(EVAL_TOPICS)  # held-out topics


def test_reward_model_score_depends_on_the_request():
    torch.manual_seed(0)
    model = RewardModel(TextEncoder(), RewardHead(384, hidden=8))
    completion = ["A wonderful, warm and funny evening."] * 2
    requests = [
        "Write a positive review of the hotel in one sentence.",
        "Write a negative review of the hotel in one sentence.",
    ]
    scores = model(requests, completion)
    assert abs(scores[0] - scores[1]) > 1e-4  # the encoder reads request and completion together
    torch.testing.assert_close(model(requests[:1], completion[:1]), scores[:1])


def _requests(n: int) -> Requests:
    return Requests(
        ["x"] * n, torch.zeros(n, 2, dtype=torch.long), torch.zeros(n, dtype=torch.long)
    )


def test_rank_pairs_follow_the_scores_break_ties_by_coin_and_flip_with_noise():
    n = 400
    first, second = torch.zeros(n, 3, dtype=torch.long), torch.ones(n, 3, dtype=torch.long)
    generator = torch.Generator().manual_seed(0)
    first_scores = torch.arange(n).float() % 3  # 0, 1, 2, ...
    second_scores = torch.ones(n)  # ties where first is 1
    clean = rank_pairs(_requests(n), first, second, first_scores, second_scores, 0.0, generator)
    first_chosen = clean.chosen[:, 0] == 0
    assert first_chosen[first_scores == 2].all() and not first_chosen[first_scores == 0].any()
    tied = first_scores == 1
    assert 0.3 < first_chosen[tied].float().mean() < 0.7  # a coin
    assert torch.equal(clean.noise_free, ~tied)
    noisy = rank_pairs(_requests(n), first, second, first_scores, second_scores, 0.2, generator)
    wrong = (noisy.chosen[:, 0] == 0)[first_scores == 0].float().mean()
    assert 0.1 < wrong < 0.3  # about 20% flipped
    with pytest.raises(UsageError, match="label noise"):
        rank_pairs(_requests(n), first, second, first_scores, second_scores, 0.5, generator)


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
