"""PPO: GAE and the clipped losses against hand-computed numbers; training raises a toy reward."""

from __future__ import annotations

import functools

import pytest
import torch
from tiny import tiny_llama

from dl2llm.alignment.dpo import completion_logps
from dl2llm.alignment.policy import add_lora, reference_of, token_logps
from dl2llm.alignment.ppo import (
    PPOConfig,
    ValueHead,
    clipped_policy_loss,
    clipped_value_loss,
    collect_rollout,
    generalized_advantages,
    kl_penalised_rewards,
    logps_and_values,
    train_ppo,
)
from dl2llm.alignment.preferences import Requests


def requests(ids: torch.Tensor) -> Requests:
    """Requests of token ids ``(N, P)`` (texts and polarity unused by these tests)."""
    return Requests(["x"] * len(ids), ids, torch.zeros(len(ids), dtype=torch.long))


def test_gae_matches_hand_computed_example():
    rewards = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 0.2, 0.4]])
    advantages, returns = generalized_advantages(rewards, values, gamma=1.0, lam=0.9)
    # t=2: delta = 1 - 0.4 = 0.6                       A2 = 0.6
    # t=1: delta = 0 + 0.4 - 0.2 = 0.2                 A1 = 0.2 + 0.9 * 0.6 = 0.74
    # t=0: delta = 0 + 0.2 - 0.5 = -0.3                A0 = -0.3 + 0.9 * 0.74 = 0.366
    torch.testing.assert_close(advantages, torch.tensor([[0.366, 0.74, 0.6]]))
    torch.testing.assert_close(returns, torch.tensor([[0.866, 0.94, 1.0]]))


def test_gae_with_discount_and_lambda_one_is_discounted_return_minus_value():
    rewards = torch.tensor([[1.0, 2.0, 3.0]])
    values = torch.tensor([[0.5, -1.0, 2.0]])
    advantages, returns = generalized_advantages(rewards, values, gamma=0.5, lam=1.0)
    discounted = torch.tensor([[1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0]])  # 2.75, 3.5, 3
    torch.testing.assert_close(returns, discounted)
    torch.testing.assert_close(advantages, discounted - values)


def test_kl_penalised_rewards():
    logps = torch.tensor([[-1.0, -2.0], [-0.5, -0.5]])
    ref_logps = torch.tensor([[-1.5, -1.0], [-0.5, -1.5]])
    rewards = kl_penalised_rewards(torch.tensor([3.0, -1.0]), logps, ref_logps, kl_coef=0.1)
    torch.testing.assert_close(rewards, torch.tensor([[-0.05, 3.1], [0.0, -1.1]]))


def test_clipped_policy_loss_hand_example_and_zero_gradient_when_clipped():
    old = torch.zeros(1, 3)
    logps = torch.log(torch.tensor([[1.5, 0.5, 1.1]])).requires_grad_()
    advantages = torch.tensor([[1.0, -1.0, 2.0]])
    loss = clipped_policy_loss(logps, old, advantages, clip_range=0.2)
    # min(1.5 * 1, 1.2 * 1) = 1.2; min(0.5 * -1, 0.8 * -1) = -0.8; min(1.1 * 2, 1.1 * 2) = 2.2
    assert loss.item() == pytest.approx(-(1.2 - 0.8 + 2.2) / 3, abs=1e-6)
    loss.backward()
    torch.testing.assert_close(logps.grad, torch.tensor([[0.0, 0.0, -1.1 * 2 / 3]]))


def test_clipped_value_loss_takes_the_larger_error():
    old = torch.tensor([[0.0, 0.0]])
    values = torch.tensor([[1.0, 0.1]])
    returns = torch.tensor([[1.0, 0.0]])
    # first: unclipped error 0, clipped value 0.2 -> error 0.64; second: 0.01 both ways
    loss = clipped_value_loss(values, old, returns, clip_range=0.2)
    assert loss.item() == pytest.approx(0.5 * (0.64 + 0.01) / 2, abs=1e-6)


def test_token_logps_and_values_match_hf_scorer():
    model = tiny_llama()
    sequences = torch.randint(0, 64, (2, 9))
    mask = torch.zeros_like(sequences)
    mask[:, 4:] = 1
    with torch.no_grad():
        ours, hidden = token_logps(model, sequences, prompt_length=4, with_hidden=True)  # (2, 5)
        hf = completion_logps(model, sequences, torch.ones_like(mask), mask)
        logps, values = logps_and_values(model, ValueHead(32), sequences, 4)
    torch.testing.assert_close(ours.sum(1), hf, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logps, ours)
    assert hidden.shape == (2, 5, 32) and values.shape == (2, 5)


def test_value_and_logp_at_step_t_see_only_the_tokens_before_completion_token_t():
    model = tiny_llama()
    head = ValueHead(32)
    torch.nn.init.normal_(head.linear.weight)  # a zero head would hide any misalignment
    sequences = torch.randint(0, 64, (1, 8))  # prompt of 3, completion of 5
    changed = sequences.clone()
    changed[0, 5] = (changed[0, 5] + 1) % 64  # completion token t = 2
    with torch.no_grad():
        logps, values = logps_and_values(model, head, sequences, 3)
        logps2, values2 = logps_and_values(model, head, changed, 3)
    torch.testing.assert_close(values[:, :3], values2[:, :3])  # V_t for t <= 2: before the token
    assert (values[:, 3:] != values2[:, 3:]).all()
    torch.testing.assert_close(logps[:, :2], logps2[:, :2])
    assert (logps[:, 2:] != logps2[:, 2:]).all()  # token 2's own log-prob and what follows


def test_rollout_against_itself_has_no_kl_and_returns_the_score_at_every_step():
    policy = add_lora(tiny_llama(), rank=4)  # B = 0: the policy is its reference
    prompts = requests(torch.randint(0, 64, (6, 3)))

    def score(_, completions: torch.Tensor) -> torch.Tensor:
        return completions.float().mean(1)  # (B,)

    config = PPOConfig(completion_tokens=4, gamma=1.0, lam=1.0, kl_coef=0.5)
    rollout = collect_rollout(
        policy, ValueHead(32), reference_of(policy), prompts, score, config,
        torch.Generator().manual_seed(0),
    )  # fmt: skip
    torch.testing.assert_close(rollout.kl, torch.zeros(6))
    torch.testing.assert_close(rollout.scores, score(None, rollout.sequences[:, 3:]))
    # no KL penalty, zero values, gamma = lambda = 1: every step's return is the final score
    torch.testing.assert_close(rollout.returns, rollout.scores[:, None].expand(-1, 4))
    assert rollout.advantages.mean().abs() < 1e-5  # whitened


@functools.cache  # one run serves both tests below
def _toy_ppo(kl_coef: float):
    """PPO on a tiny Llama's LoRA whose reward is the share of token 5.

    Weights drawn at scale 0.3 (not 0.02): behind a frozen norm and output layer,
    LoRA could otherwise barely move the near-uniform next-token distribution.
    """
    policy = add_lora(tiny_llama(initializer_range=0.3), rank=4)
    base_before = {k: v.clone() for k, v in policy.state_dict().items() if "lora_" not in k}
    prompts = requests(torch.randint(0, 64, (32, 3)))

    def share_of_token_5(_, completions: torch.Tensor) -> torch.Tensor:
        return (completions == 5).float().mean(1)  # (B,)

    config = PPOConfig(
        iterations=12, batch_size=32, completion_tokens=6, epochs=4, minibatch_size=16,
        learning_rate=3e-2, kl_coef=kl_coef,
    )  # fmt: skip
    torch.manual_seed(0)
    history = train_ppo(
        policy, ValueHead(32), prompts, share_of_token_5, config,
        torch.Generator().manual_seed(0), progress=False,
    )  # fmt: skip
    return history, policy, base_before


def test_ppo_raises_a_toy_reward_and_never_changes_the_base_weights():
    history, policy, base_before = _toy_ppo(kl_coef=0.01)
    assert history.scores[0] < 0.1  # about 1/64 before training
    assert sum(history.scores[-3:]) / 3 > 0.3
    assert history.kl[-1] > 1.0  # the policy moved away from the reference
    for name, tensor in policy.state_dict().items():
        if name in base_before:
            assert torch.equal(tensor, base_before[name]), name


def test_larger_kl_penalty_keeps_the_policy_closer_to_the_reference():
    loose, *_ = _toy_ppo(kl_coef=0.01)
    tight, *_ = _toy_ppo(kl_coef=1.0)
    assert sum(tight.kl[-3:]) < 0.5 * sum(loose.kl[-3:])
