"""PPO for language models, written out: RLHF's reinforcement-learning step.

With a reward model in hand, RLHF (Ziegler et al., 2019; Stiennon et al., 2020;
Ouyang et al., 2022) tunes the policy ``pi`` to maximise reward while staying
close to the frozen reference ``pi_ref`` (the model before tuning)::

    maximise  E[ r(x, y) ] - kl_coef * KL(pi(.|x) || pi_ref(.|x))

Each generated token is one action. Token ``t`` gets the reward
``-kl_coef * (log pi(y_t) - log pi_ref(y_t))`` (a per-token KL estimate), and
the last token also gets the reward model's score of the whole completion.

Proximal Policy Optimization (Schulman et al., 2017) then repeats:

1. *Rollout*: sample completions, record their token log-probs under ``pi``
   (``old_logps``) and ``pi_ref`` and the value head's estimates ``V_t``.
2. *Advantages* by Generalized Advantage Estimation (Schulman et al., 2016)::

       delta_t = r_t + gamma * V_{t+1} - V_t          (V after the last token = 0)
       A_t     = delta_t + gamma * lambda * A_{t+1}
       returns_t = A_t + V_t                           (the value head's target)

3. *Update*, a few epochs over the rollout, with the clipped objective::

       ratio = exp(log pi(y_t) - old_logps_t)
       policy_loss = -mean(min(ratio * A_t, clip(ratio, 1 - eps, 1 + eps) * A_t))

   which stops a step from moving the policy far from the one that sampled the
   data, plus a clipped squared error for the value head.

The value head is one linear layer on the policy's final hidden states. The
policy is a LoRA-wrapped causal LM; ``pi_ref`` is the same network with the
adapter switched off (:func:`dl2llm.alignment.policy.reference_of`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from dl2llm.alignment.policy import Reference, reference_of, sample, token_logps
from dl2llm.alignment.preferences import Requests

RewardFn = Callable[[Requests, Tensor], Tensor]


@dataclass(frozen=True)
class PPOConfig:
    """Settings of :func:`train_ppo`; ``iterations * batch_size`` completions are sampled."""

    iterations: int = 6
    batch_size: int = 16
    completion_tokens: int = 16
    epochs: int = 1
    minibatch_size: int = 8
    learning_rate: float = 2e-3  # 1e-2 drove the KL to 55-116 nats in 12 steps
    kl_coef: float = 0.1
    gamma: float = 1.0
    lam: float = 0.95
    clip_range: float = 0.2
    value_clip_range: float = 0.2
    value_coef: float = 0.5
    max_grad_norm: float = 1.0

    @property
    def samples(self) -> int:
        """Completions sampled (and reward-model queries) over the whole run."""
        return self.iterations * self.batch_size


class ValueHead(nn.Module):
    """Hidden states ``(B, T, C)`` to value estimates ``(B, T)``."""

    def __init__(self, n_embd: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_embd, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.linear(hidden.float()).squeeze(-1)


def logps_and_values(
    policy: nn.Module, value_head: ValueHead, sequences: Tensor, prompt_length: int
) -> tuple[Tensor, Tensor]:
    """Token log-probs ``(B, L)`` and values ``(B, L)`` of the completion, one forward pass.

    ``values[:, t]`` estimates the return from the state just before completion token ``t``.
    """
    logps, hidden = token_logps(policy, sequences, prompt_length, with_hidden=True)
    return logps, value_head(hidden)


def kl_penalised_rewards(
    scores: Tensor, logps: Tensor, ref_logps: Tensor, kl_coef: float
) -> Tensor:
    """Per-token rewards ``(B, L)``: ``-kl_coef * (logp - ref_logp)``; the score at the end."""
    rewards = -kl_coef * (logps - ref_logps)  # (B, L)
    rewards[:, -1] += scores
    return rewards


def generalized_advantages(
    rewards: Tensor, values: Tensor, gamma: float, lam: float
) -> tuple[Tensor, Tensor]:
    """GAE advantages and returns, each ``(B, L)``, from rewards and values ``(B, L)``."""
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros_like(rewards[:, 0])  # (B,)
    next_value = torch.zeros_like(rewards[:, 0])  # the episode ends after the last token
    for t in reversed(range(rewards.size(1))):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_advantage = delta + gamma * lam * next_advantage
        advantages[:, t] = next_advantage
        next_value = values[:, t]
    return advantages, advantages + values


def clipped_policy_loss(
    logps: Tensor, old_logps: Tensor, advantages: Tensor, clip_range: float
) -> Tensor:
    """PPO's clipped surrogate, ``-mean(min(ratio * A, clip(ratio) * A))``; inputs ``(B, L)``."""
    ratio = torch.exp(logps - old_logps)
    clipped = ratio.clamp(1.0 - clip_range, 1.0 + clip_range)
    return -torch.min(ratio * advantages, clipped * advantages).mean()


def clipped_value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, clip_range: float
) -> Tensor:
    """Squared error to ``returns``, pessimistic over clipped and unclipped values ``(B, L)``."""
    clipped = old_values + (values - old_values).clamp(-clip_range, clip_range)
    return 0.5 * torch.max((values - returns) ** 2, (clipped - returns) ** 2).mean()


def whiten(values: Tensor) -> Tensor:
    """Zero mean and unit variance (advantage normalisation)."""
    return (values - values.mean()) / (values.std() + 1e-8)


@dataclass
class Rollout:
    """One batch of sampled completions and what PPO needs to learn from them."""

    sequences: Tensor  # (B, P + L)
    old_logps: Tensor  # (B, L)
    old_values: Tensor  # (B, L)
    advantages: Tensor  # (B, L)
    returns: Tensor  # (B, L)
    scores: Tensor  # (B,) reward-model scores
    kl: Tensor  # (B,) summed log pi - log pi_ref of each completion


@torch.no_grad()
def collect_rollout(
    policy: nn.Module,
    value_head: ValueHead,
    reference: Reference,
    requests: Requests,
    reward_fn: RewardFn,
    config: PPOConfig,
    generator: torch.Generator,
    banned: tuple[int, ...] = (),
) -> Rollout:
    """Sample completions of ``requests``, score them with ``reward_fn`` and compute GAE."""
    P = requests.ids.size(1)
    completions = sample(policy, requests.ids, config.completion_tokens, generator, banned)
    sequences = torch.cat([requests.ids, completions], 1)  # (B, P + L)
    logps, values = logps_and_values(policy, value_head, sequences, P)  # (B, L) each
    with reference():
        ref_logps, _ = token_logps(policy, sequences, P)  # (B, L)
    scores = reward_fn(requests, completions)  # (B,)
    rewards = kl_penalised_rewards(scores, logps, ref_logps, config.kl_coef)
    advantages, returns = generalized_advantages(rewards, values, config.gamma, config.lam)
    kl = (logps - ref_logps).sum(1)
    return Rollout(sequences, logps, values, whiten(advantages), returns, scores, kl)


def ppo_update(
    policy: nn.Module,
    value_head: ValueHead,
    rollout: Rollout,
    optimizer: torch.optim.Optimizer,
    config: PPOConfig,
    prompt_length: int,
    generator: torch.Generator,
) -> float:
    """``config.epochs`` passes of minibatch PPO over ``rollout``; returns the last loss."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for _ in range(config.epochs):
        order = torch.randperm(len(rollout.sequences), generator=generator)
        for start in range(0, len(order), config.minibatch_size):
            idx = order[start : start + config.minibatch_size]
            logps, values = logps_and_values(
                policy, value_head, rollout.sequences[idx], prompt_length
            )
            policy_loss = clipped_policy_loss(
                logps, rollout.old_logps[idx], rollout.advantages[idx], config.clip_range
            )
            value_loss = clipped_value_loss(
                values, rollout.old_values[idx], rollout.returns[idx], config.value_clip_range
            )
            loss = policy_loss + config.value_coef * value_loss
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
    return loss.item()


@dataclass
class PPOHistory:
    """Mean reward-model score and KL to the reference of each iteration's rollout."""

    scores: list[float]
    kl: list[float]
    losses: list[float]


def train_ppo(
    policy: nn.Module,
    value_head: ValueHead,
    requests: Requests,
    reward_fn: RewardFn,
    config: PPOConfig,
    generator: torch.Generator,
    banned: tuple[int, ...] = (),
    progress: bool = True,
) -> PPOHistory:
    """Tune ``policy``'s trainable parameters (its LoRA) and ``value_head`` by PPO.

    Each iteration draws ``config.batch_size`` requests from ``requests``;
    ``reward_fn(requests, completions (B, L))`` gives scores ``(B,)``. The
    reference is ``policy`` with its adapter off (:func:`reference_of`).
    """
    policy.eval()  # no dropout: the ratio must compare the same function
    reference = reference_of(policy)
    trainable = [p for p in policy.parameters() if p.requires_grad] + list(value_head.parameters())
    optimizer = torch.optim.Adam(trainable, lr=config.learning_rate)
    history = PPOHistory([], [], [])
    P = requests.ids.size(1)
    for _ in tqdm(range(config.iterations), desc="PPO", disable=not progress):
        idx = torch.randint(len(requests), (config.batch_size,), generator=generator)
        rollout = collect_rollout(
            policy, value_head, reference, requests.subset(idx), reward_fn, config, generator,
            banned,
        )  # fmt: skip
        loss = ppo_update(policy, value_head, rollout, optimizer, config, P, generator)
        history.scores.append(rollout.scores.mean().item())
        history.kl.append(rollout.kl.mean().item())
        history.losses.append(loss)
    return history
