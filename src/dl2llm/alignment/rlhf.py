"""RLHF end to end on the project's GPT-2: preferences, reward model, PPO and DPO side by side.

The pipeline of Ouyang et al. (2022, "Training language models to follow
instructions with human feedback"), shrunk to a laptop:

1. The pretrained GPT-2 is the *reference* policy. It continues review openings
   a few times; a fixed labeler prefers the most positive continuation to the
   least positive one (with label noise): :mod:`dl2llm.alignment.preferences`.
2. A Bradley-Terry *reward model* learns those preferences
   (:mod:`dl2llm.alignment.reward`), stopping early on validation pairs; its
   accuracy on held-out pairs says how well.
3. *PPO* (:mod:`dl2llm.alignment.ppo`) tunes a LoRA-wrapped copy of the policy to
   maximise the reward model's score with a KL penalty to the frozen reference.
4. *DPO* (Rafailov et al., 2023; :mod:`dl2llm.alignment.dpo`) tunes another
   LoRA copy directly on the preference pairs, with no reward model and no sampling.

Both tuned policies are then judged against the reference on held-out prompts
by the labeler itself (the "true" preference the reward model only estimates):
the win rate is the share of prompts where the tuned continuation scores higher
than the reference's continuation (the same reference samples for both methods),
ties counting half, with a bootstrap 95% interval. Over training we track the
labeler's score of sampled continuations and the KL to the reference.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from dl2llm.alignment.dpo import DPOConfig, train_dpo
from dl2llm.alignment.ppo import PPOConfig, ValueHead, sequence_kl, train_ppo
from dl2llm.alignment.preferences import (
    Labeler,
    PreferencePairs,
    build_preference_pairs,
    decode,
    review_prompts,
    sample_completions,
)
from dl2llm.alignment.reward import (
    RewardHead,
    RewardModel,
    RewardTrainingResult,
    TextEncoder,
    train_reward_head,
)
from dl2llm.finetune.lora import inject_lora
from dl2llm.gpt import GPT

LORA_TARGETS = ("qkv_proj", "out_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class RLHFConfig:
    """Sizes of one run of :func:`run_rlhf` (``quick()`` shrinks them for CI)."""

    prompt_tokens: int = 6
    completion_tokens: int = 12
    preference_prompts: int = 1200
    samples_per_prompt: int = 4
    heldout_fraction: float = 0.2
    validation_fraction: float = 0.15
    label_noise: float = 0.1
    eval_prompts: int = 500
    probe_prompts: int = 128
    probes: int = 4
    lora_rank: int = 8
    reward_epochs: int = 300
    ppo: PPOConfig = field(default_factory=PPOConfig)
    dpo: DPOConfig = field(default_factory=DPOConfig)

    @classmethod
    def quick(cls) -> RLHFConfig:
        return cls(
            completion_tokens=8,
            preference_prompts=48,
            eval_prompts=32,
            probe_prompts=16,
            probes=2,
            reward_epochs=50,
            ppo=PPOConfig(
                iterations=3, batch_size=8, completion_tokens=8, epochs=2, minibatch_size=8
            ),
            dpo=DPOConfig(steps=4, batch_size=8),
        )


def frozen_copy(model: GPT) -> GPT:
    """A copy of ``model`` that cannot train: no gradients, eval mode."""
    frozen = copy.deepcopy(model).eval()
    for param in frozen.parameters():
        param.requires_grad_(False)
    return frozen


def lora_policy(base: GPT, rank: int) -> GPT:
    """A copy of ``base`` whose attention and MLP matrices get trainable LoRA adapters."""
    policy = copy.deepcopy(base)
    inject_lora(policy, LORA_TARGETS, r=rank, alpha=2.0 * rank)
    return policy.eval()


@dataclass(frozen=True)
class Judge:
    """What measures a policy: the labeler (true preference) and the learned reward model."""

    labeler: Labeler
    reward_model: RewardModel
    tokenizer: object

    def gold(self, completions: Tensor) -> Tensor:
        """The labeler's scores ``(N,)`` of completion tokens ``(N, L)``."""
        return self.labeler(decode(self.tokenizer, completions))

    def learned(self, completions: Tensor) -> Tensor:
        """The reward model's scores ``(N,)``."""
        return self.reward_model(decode(self.tokenizer, completions))


def probe(
    policy: GPT, reference: GPT, prompts: Tensor, judge: Judge, length: int, seed: int
) -> dict[str, float]:
    """Mean labeler score, reward-model score and KL to the reference of fresh samples."""
    completions = sample_completions(policy, prompts, length, torch.Generator().manual_seed(seed))
    sequences = torch.cat([prompts, completions], 1)  # (N, P + L)
    return {
        "gold": judge.gold(completions).mean().item(),
        "reward_model": judge.learned(completions).mean().item(),
        "kl": sequence_kl(policy, reference, sequences, prompts.size(1)).mean().item(),
    }


def win_rate(
    tuned_scores: Tensor, reference_scores: Tensor, seed: int, resamples: int = 2000
) -> dict[str, float]:
    """Share of prompts where tuned beats reference (ties half) and a bootstrap 95% interval."""
    wins = (tuned_scores > reference_scores).double() + 0.5 * (tuned_scores == reference_scores)
    wins = wins.numpy()
    rng = np.random.default_rng(seed)
    means = wins[rng.integers(0, len(wins), (resamples, len(wins)))].mean(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"win_rate": float(wins.mean()), "low": float(low), "high": float(high)}


@dataclass
class MethodReport:
    """One tuning method: probes over training and the final head-to-head."""

    fraction: list[float] = field(default_factory=list)  # share of training done at each probe
    gold: list[float] = field(default_factory=list)
    reward_model: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    win: dict[str, float] = field(default_factory=dict)
    win_by_reward_model: dict[str, float] = field(default_factory=dict)

    def record(self, fraction: float, measured: dict[str, float]) -> None:
        """Append one probe's numbers."""
        self.fraction.append(fraction)
        for key in ("gold", "reward_model", "kl"):
            getattr(self, key).append(measured[key])


@dataclass
class RLHFReport:
    """Everything :func:`run_rlhf` measured."""

    pairs: PreferencePairs
    reward: RewardTrainingResult
    reward_noise_free_accuracy: float | None
    reference_gold: float
    ppo: MethodReport
    dpo: MethodReport


def split_pairs(
    pairs: PreferencePairs, heldout_fraction: float, generator: torch.Generator
) -> tuple[PreferencePairs, PreferencePairs]:
    """A random (rest, held-out) split of the pairs."""
    order = torch.randperm(len(pairs), generator=generator)
    n_heldout = max(1, int(heldout_fraction * len(pairs)))
    return pairs.subset(order[n_heldout:]), pairs.subset(order[:n_heldout])


def fit_reward_model(
    train: PreferencePairs,
    validation: PreferencePairs,
    heldout: PreferencePairs,
    tokenizer,
    epochs: int,
) -> tuple[RewardModel, RewardTrainingResult, float | None]:
    """Train the Bradley-Terry head, stopping early on ``validation``; normalise its scores.

    Also returns the held-out accuracy on noise-free pairs (``None`` if there are none).
    """
    encoder = TextEncoder()

    def embed(pairs: PreferencePairs) -> tuple[Tensor, Tensor]:
        return encoder(decode(tokenizer, pairs.chosen)), encoder(decode(tokenizer, pairs.rejected))

    train_emb, validation_emb, heldout_emb = embed(train), embed(validation), embed(heldout)
    head = RewardHead(train_emb[0].size(1))
    result = train_reward_head(head, train_emb, heldout_emb, epochs, validation=validation_emb)
    clean = heldout.noise_free
    with torch.no_grad():
        correct = head(heldout_emb[0][clean]) > head(heldout_emb[1][clean])
        reference_scores = head(torch.cat(train_emb))  # (2N,): completions of the reference
    noise_free_accuracy = correct.float().mean().item() if clean.any() else None
    offset, scale = reference_scores.mean().item(), reference_scores.std().item() + 1e-8
    return RewardModel(encoder, head, offset, scale), result, noise_free_accuracy


@dataclass
class Prober:
    """Called after each training step; at ``probes`` evenly spaced steps, records a probe."""

    report: MethodReport
    policy: GPT
    reference: GPT
    prompts: Tensor
    judge: Judge
    length: int
    seed: int
    total_steps: int
    probes: int

    def __call__(self, step: int) -> None:
        due = {round(self.total_steps * k / self.probes) for k in range(1, self.probes + 1)}
        if step in due:
            measured = probe(
                self.policy, self.reference, self.prompts, self.judge, self.length, self.seed
            )
            self.report.record(step / self.total_steps, measured)


@dataclass(frozen=True)
class Baseline:
    """The reference's completions of the evaluation prompts and both judges' scores ``(N,)``."""

    prompts: Tensor  # (N, P)
    gold: Tensor
    learned: Tensor


def reference_baseline(
    reference: GPT, prompts: Tensor, judge: Judge, length: int, seed: int
) -> Baseline:
    """Sample the reference once on the evaluation prompts; PPO and DPO both face these."""
    base = sample_completions(reference, prompts, length, torch.Generator().manual_seed(seed + 2))
    return Baseline(prompts, judge.gold(base), judge.learned(base))


def _head_to_head(
    report: MethodReport, policy: GPT, baseline: Baseline, judge: Judge, length: int, seed: int
) -> None:
    generator = torch.Generator().manual_seed(seed + 1)
    tuned = sample_completions(policy, baseline.prompts, length, generator)
    report.win = win_rate(judge.gold(tuned), baseline.gold, seed)
    report.win_by_reward_model = win_rate(judge.learned(tuned), baseline.learned, seed)


def run_rlhf(
    base: GPT,
    labeler: Labeler,
    tokenizer,
    settings: RLHFConfig,
    seed: int = 0,
    progress: bool = True,
) -> tuple[RLHFReport, GPT]:
    """Build preferences, fit the reward model, tune by PPO and by DPO, and judge both.

    Returns the report and the frozen reference (for checking that it never changed).
    """
    generator = torch.Generator().manual_seed(seed)
    reference = frozen_copy(base)
    length = settings.completion_tokens
    prompts = review_prompts(
        "train", settings.preference_prompts, settings.prompt_tokens, tokenizer
    )
    probe_prompts = review_prompts("val", settings.probe_prompts, settings.prompt_tokens, tokenizer)
    eval_prompts = review_prompts("test", settings.eval_prompts, settings.prompt_tokens, tokenizer)
    pairs = build_preference_pairs(
        reference, prompts, labeler, tokenizer, length, settings.label_noise, generator,
        settings.samples_per_prompt,
    )  # fmt: skip
    train_pairs, heldout_pairs = split_pairs(pairs, settings.heldout_fraction, generator)
    fit_pairs, validation_pairs = split_pairs(train_pairs, settings.validation_fraction, generator)
    reward_model, reward, clean_accuracy = fit_reward_model(
        fit_pairs, validation_pairs, heldout_pairs, tokenizer, settings.reward_epochs
    )
    judge = Judge(labeler, reward_model, tokenizer)
    baseline = reference_baseline(reference, eval_prompts, judge, length, seed)
    start = probe(reference, reference, probe_prompts, judge, length, seed)
    reports = {"ppo": MethodReport(), "dpo": MethodReport()}
    for report in reports.values():
        report.record(0.0, start)

    ppo_policy = lora_policy(base, settings.lora_rank)
    train_ppo(
        ppo_policy,
        ValueHead(base.config.n_embd),
        reference,
        prompts,
        judge.learned,
        replace(settings.ppo, completion_tokens=length),
        generator,
        Prober(reports["ppo"], ppo_policy, reference, probe_prompts, judge, length, seed,
               settings.ppo.iterations, settings.probes),
        progress,
    )  # fmt: skip
    _head_to_head(reports["ppo"], ppo_policy, baseline, judge, length, seed)

    dpo_policy = lora_policy(base, settings.lora_rank)
    dpo_prober = Prober(
        reports["dpo"], dpo_policy, reference, probe_prompts, judge, length, seed,
        settings.dpo.steps, settings.probes,
    )  # fmt: skip
    train_dpo(dpo_policy, reference, train_pairs, settings.dpo, generator, dpo_prober, progress)
    _head_to_head(reports["dpo"], dpo_policy, baseline, judge, length, seed)
    report = RLHFReport(
        pairs, reward, clean_accuracy, start["gold"], reports["ppo"], reports["dpo"]
    )
    return report, reference
