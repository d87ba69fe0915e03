"""RLHF end to end on SmolLM2: preferences, reward model, then PPO, DPO and best-of-N.

The pipeline of Ouyang et al. (2022), shrunk to a laptop, on a task where the
prompt matters (:mod:`dl2llm.alignment.preferences`): the policy is asked for a
positive or a negative one-sentence review of a topic.

1. The reference policy (SmolLM2-135M-Instruct) answers training requests
   twice; the true reward (a sentiment classifier's probability of the asked
   polarity) prefers one answer, with label noise.
2. A Bradley-Terry *reward model* (:mod:`dl2llm.alignment.reward`) learns those
   preferences from (request, completion) pairs; stopped early on validation
   pairs, measured on held-out pairs.
3. Three ways to get more reward, each with the same budget of sampled
   completions scored by the reward model (``samples``):

   * *PPO* (:mod:`dl2llm.alignment.ppo`): ``samples`` on-policy rollouts, KL
     penalty ``kl_coef`` to the reference;
   * *DPO* (Rafailov et al., 2023; :mod:`dl2llm.alignment.dpo`): ``samples / 2``
     requests answered twice by the reference, the reward model picks the
     chosen one (the same reward signal as PPO), strength ``beta``;
   * *best-of-N* (Nakano et al., 2021; Gao et al., 2023): sample ``N`` answers
     from the reference, keep the one the reward model likes best. Its KL to
     the reference is known in closed form, ``log N - (N - 1) / N``.

Every tuned policy is LoRA on the same base model; its reference is the base
with the adapter off (:mod:`dl2llm.alignment.policy`). Each is judged on
held-out topics by the *true* reward and by the reward model (the gap shows
over-optimisation), with its KL to the reference and its win rate against the
reference's own answers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn

from dl2llm.alignment.dpo import DPOConfig, train_dpo
from dl2llm.alignment.policy import (
    reference_of,
    reset_adapters,
    sample_batched,
    sequence_kl,
)
from dl2llm.alignment.ppo import PPOConfig, ValueHead, train_ppo
from dl2llm.alignment.preferences import (
    EVAL_TOPICS,
    TRAIN_TOPICS,
    PreferencePairs,
    Requests,
    TrueReward,
    rank_pairs,
    review_requests,
)
from dl2llm.alignment.reward import (
    RewardHead,
    RewardModel,
    RewardTrainingResult,
    TextEncoder,
    train_reward_head,
)


@dataclass(frozen=True)
class RLHFConfig:
    """One seed's sizes (``quick()`` shrinks them for CI); the sweep lives in the lesson."""

    completion_tokens: int = 16
    lora_rank: int = 8
    preference_draws: int = 128  # requests answered twice by the reference for the reward model
    label_noise: float = 0.1
    heldout_fraction: float = 0.2
    validation_fraction: float = 0.15
    reward_hidden: int = 64
    reward_epochs: int = 300
    eval_samples: int = 2  # answers per held-out request for each tuned policy
    best_of: tuple[int, ...] = (1, 2, 4, 8)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    dpo: DPOConfig = field(default_factory=DPOConfig)

    def __post_init__(self) -> None:
        biggest = max(self.best_of)
        if any(biggest % n for n in self.best_of) or biggest < self.eval_samples:
            raise ValueError("best_of sizes must divide the largest, which must be >= eval_samples")

    @property
    def samples(self) -> int:
        """Completions scored by the reward model per PPO or DPO run (equal by design)."""
        return self.ppo.samples

    @classmethod
    def quick(cls) -> RLHFConfig:
        return cls(
            completion_tokens=6,
            preference_draws=24,
            reward_epochs=20,
            eval_samples=2,
            best_of=(1, 2, 4),
            ppo=PPOConfig(
                iterations=2, batch_size=4, completion_tokens=6, epochs=1, minibatch_size=4
            ),
            dpo=DPOConfig(epochs=1, batch_size=2),
        )


def best_of_n_kl(n: int) -> float:
    """``KL(best-of-n || reference) = log n - (n - 1) / n`` nats (Stiennon et al., 2020, app.)."""
    return math.log(n) - (n - 1) / n


@dataclass
class Judge:
    """The true reward and the learned reward model, both of (request, completion)."""

    true_reward: TrueReward
    reward_model: RewardModel | None
    decode: Callable[[Tensor], list[str]]

    def true(self, requests: Requests, completions: Tensor) -> Tensor:
        """True rewards ``(N,)`` of completion tokens ``(N, L)``."""
        return self.true_reward(requests.polarity, self.decode(completions))

    def learned(self, requests: Requests, completions: Tensor) -> Tensor:
        """Reward-model scores ``(N,)`` (0 = the reference's mean, unit = its spread)."""
        return self.reward_model(requests.texts, self.decode(completions))


@dataclass
class Setup:
    """One seed's shared pieces: requests, reward model, the reference's held-out answers."""

    train: Requests
    eval: Requests
    judge: Judge
    reward: RewardTrainingResult
    pairs: int
    pool_true: Tensor  # (E, n_max): true rewards of the reference's answers to eval request e
    pool_learned: Tensor  # (E, n_max): reward-model scores of the same answers
    reference_true: float
    dpo_pairs: dict[int, PreferencePairs] = field(default_factory=dict)  # by seed, for all betas


def _draw(requests: Requests, n: int, generator: torch.Generator) -> Requests:
    return requests.subset(torch.randint(len(requests), (n,), generator=generator))


def split(pairs: PreferencePairs, fraction: float, generator: torch.Generator):
    """A random (rest, ``fraction``) split of ``pairs``."""
    order = torch.randperm(len(pairs), generator=generator)
    n = max(1, int(fraction * len(pairs)))
    return pairs.subset(order[n:]), pairs.subset(order[:n])


def fit_reward_model(
    pairs: PreferencePairs, judge: Judge, settings: RLHFConfig, generator: torch.Generator
) -> tuple[RewardModel, RewardTrainingResult]:
    """Train the Bradley-Terry head on (request, completion) pairs; normalise its scores."""
    encoder = TextEncoder()
    rest, heldout = split(pairs, settings.heldout_fraction, generator)
    fit, validation = split(rest, settings.validation_fraction, generator)

    def embed(part: PreferencePairs) -> tuple[Tensor, Tensor]:
        texts = part.requests.texts
        return encoder(texts, judge.decode(part.chosen)), encoder(
            texts, judge.decode(part.rejected)
        )

    fit_emb, val_emb, held_emb = embed(fit), embed(validation), embed(heldout)
    head = RewardHead(fit_emb[0].size(1), settings.reward_hidden)
    result = train_reward_head(head, fit_emb, held_emb, settings.reward_epochs, validation=val_emb)
    with torch.no_grad():
        reference_scores = head(torch.cat(fit_emb))  # (2N,): answers of the reference
    offset, scale = reference_scores.mean().item(), reference_scores.std().item() + 1e-8
    return RewardModel(encoder, head, offset, scale), result


def prepare(
    policy: nn.Module,
    tokenizer,
    true_reward: TrueReward,
    settings: RLHFConfig,
    seed: int,
    banned: tuple[int, ...],
) -> Setup:
    """Preference pairs, the reward model, and the reference's pool of held-out answers."""
    generator = torch.Generator().manual_seed(seed)
    reset_adapters(policy, seed)  # the LoRA policy starts as the reference
    L = settings.completion_tokens
    judge = Judge(true_reward, None, lambda ids: tokenizer.batch_decode(ids))
    train = review_requests(TRAIN_TOPICS, tokenizer)
    evaluation = review_requests(EVAL_TOPICS, tokenizer)
    drawn = _draw(train, settings.preference_draws, generator)
    with reference_of(policy)():
        first, second = (sample_batched(policy, drawn.ids, L, generator, banned) for _ in "ab")
        n_max = max(settings.best_of)
        pool = sample_batched(policy, evaluation.repeat(n_max).ids, L, generator, banned)
    pairs = rank_pairs(
        drawn,
        first,
        second,
        judge.true(drawn, first),
        judge.true(drawn, second),
        settings.label_noise,
        generator,
    )
    judge.reward_model, reward = fit_reward_model(pairs, judge, settings, generator)
    repeated = evaluation.repeat(n_max)
    pool_true = judge.true(repeated, pool).view(len(evaluation), n_max)
    pool_learned = judge.learned(repeated, pool).view(len(evaluation), n_max)
    return Setup(
        train,
        evaluation,
        judge,
        reward,
        len(pairs),
        pool_true,
        pool_learned,
        pool_true.mean().item(),
    )


def best_of_n(setup: Setup, n: int) -> dict[str, float]:
    """True reward and reward-model score of best-of-``n`` (by the reward model), and its KL."""
    E, n_max = setup.pool_true.shape
    learned = setup.pool_learned.view(E, n_max // n, n)  # disjoint groups of n answers
    true = setup.pool_true.view(E, n_max // n, n)
    best = learned.argmax(-1, keepdim=True)  # (E, G, 1)
    return {
        "true_reward": true.gather(-1, best).mean().item(),
        "reward_model": learned.gather(-1, best).mean().item(),
        "kl": best_of_n_kl(n),
        "samples_per_prompt": n,
    }


def win_rate(tuned: Tensor, reference: Tensor) -> float:
    """Share of paired answers where the tuned one has the higher true reward (ties half)."""
    return ((tuned > reference).double() + 0.5 * (tuned == reference)).mean().item()


def evaluate(
    policy: nn.Module, setup: Setup, settings: RLHFConfig, seed: int, banned: tuple[int, ...]
) -> dict[str, float]:
    """True reward, reward-model score, KL and win rate of ``policy`` on held-out requests."""
    generator = torch.Generator().manual_seed(seed + 7)
    k = settings.eval_samples
    requests = setup.eval.repeat(k)
    completions = sample_batched(
        policy, requests.ids, settings.completion_tokens, generator, banned
    )
    sequences = torch.cat([requests.ids, completions], 1)
    true = setup.judge.true(requests, completions)
    kl = sequence_kl(policy, reference_of(policy), sequences, requests.ids.size(1))
    return {
        "true_reward": true.mean().item(),
        "reward_model": setup.judge.learned(requests, completions).mean().item(),
        "kl": kl.mean().item(),
        "win_rate": win_rate(true, setup.pool_true[:, :k].reshape(-1)),
    }


def reference_pairs(
    policy: nn.Module,
    setup: Setup,
    settings: RLHFConfig,
    generator: torch.Generator,
    banned: tuple[int, ...],
) -> PreferencePairs:
    """DPO's data: ``samples / 2`` training requests answered twice by the reference,
    the reward model's favourite of each two "chosen" (``samples`` reward-model queries)."""
    drawn = _draw(setup.train, settings.samples // 2, generator)
    L = settings.completion_tokens
    with reference_of(policy)():
        first, second = (sample_batched(policy, drawn.ids, L, generator, banned) for _ in "ab")
    first_scores, second_scores = (
        setup.judge.learned(drawn, first),
        setup.judge.learned(drawn, second),
    )
    return rank_pairs(drawn, first, second, first_scores, second_scores, 0.0, generator)


def run_method(
    method: str,
    coef: float,
    policy: nn.Module,
    setup: Setup,
    settings: RLHFConfig,
    seed: int,
    banned: tuple[int, ...],
    progress: bool = False,
) -> dict[str, float]:
    """Tune a fresh adapter by ``"ppo"`` (``kl_coef = coef``) or ``"dpo"`` (``beta = coef``).

    Both sample ``settings.samples`` completions and query the reward model as
    often; returns :func:`evaluate`'s numbers plus the budget and the seconds taken.
    """
    start = time.perf_counter()
    reset_adapters(policy, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    L = settings.completion_tokens
    torch.manual_seed(seed)
    if method == "ppo":
        config = replace(settings.ppo, kl_coef=coef, completion_tokens=L)
        value_head = ValueHead(policy.config.hidden_size)
        train_ppo(
            policy,
            value_head,
            setup.train,
            setup.judge.learned,
            config,
            generator,
            banned,
            progress,
        )
    elif method == "dpo":
        if seed not in setup.dpo_pairs:  # sampled once per seed, shared by every beta
            setup.dpo_pairs[seed] = reference_pairs(policy, setup, settings, generator, banned)
        pairs = setup.dpo_pairs[seed]
        train_dpo(policy, pairs, replace(settings.dpo, beta=coef), generator, progress)
    else:
        raise ValueError(f"unknown method {method!r}")
    result = evaluate(policy, setup, settings, seed, banned)
    seconds = time.perf_counter() - start
    return {
        **result,
        "samples": settings.samples,
        "reward_model_queries": settings.samples,
        "seconds": seconds,
    }
