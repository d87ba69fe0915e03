"""A preference dataset built by a fixed "labeler": what RLHF learns from.

RLHF (Christiano et al., 2017; Stiennon et al., 2020; Ouyang et al., 2022) does
not ask people for the right answer; it asks which of two answers is better.
Here a fixed program plays the human: the policy continues the first tokens of a
movie-review snippet ``K`` times, a *labeler* scores the continuations, and the
best is "chosen", the worst "rejected" (with ``K = 4`` rather than 2 the pair
has a real margin, as when InstructGPT's labelers ranked 4 to 9 outputs at
once). Real labelers disagree with themselves, so each label is flipped with a
small probability (label noise).

Two labelers say what "better" means, both "more positive":

* :class:`SentimentLabeler` -- the week 3 fine-tuned sentiment classifier's
  probability of "positive";
* :class:`LexiconLabeler` -- a rule: positive minus negative words from a short
  list. It needs no trained model, so quick runs use it on a fresh machine.

Prompts are cut to the same number of tokens and completions have a fixed
length, so every batch is a plain ``(B, T)`` tensor with no padding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from dl2llm.data import sentiment_splits
from dl2llm.gpt import GPT
from dl2llm.runtime import UsageError

POSITIVE_WORDS = frozenset(
    "good great best fine love loved lovely fun funny beautiful wonderful brilliant charming "
    "delightful enjoy enjoyable excellent moving powerful perfect rich smart sweet warm well "
    "win happy nice strong fresh clever".split()
)
NEGATIVE_WORDS = frozenset(
    "bad worst dull boring awful poor stupid mess ugly weak fail fails failed hate tired flat "
    "lame silly sad worse pointless tedious waste never nothing no not".split()
)


class Labeler(Protocol):
    """Scores texts; a higher score means a more preferred text."""

    def __call__(self, texts: list[str]) -> Tensor: ...


class LexiconLabeler:
    """Rule-based labeler: (# positive words - # negative words) in each text."""

    def __call__(self, texts: list[str]) -> Tensor:
        scores = []
        for text in texts:
            words = re.findall(r"[a-z']+", text.lower())
            scores.append(
                sum(w in POSITIVE_WORDS for w in words) - sum(w in NEGATIVE_WORDS for w in words)
            )
        return torch.tensor(scores, dtype=torch.float32)  # (N,)


class SentimentLabeler:
    """The week 3 sentiment classifier: probability that each text is positive."""

    def __init__(self, quick: bool = False) -> None:
        from dl2llm.classification import load_sentiment_classifier

        self.model, self.tokenizer = load_sentiment_classifier(quick)

    def __call__(self, texts: list[str]) -> Tensor:
        from dl2llm.classification import predict_proba

        probs = predict_proba(self.model, self.tokenizer, texts, max_length=64)  # (N, 2)
        return torch.from_numpy(probs[:, 1]).float()  # (N,)


@dataclass(frozen=True)
class PreferencePairs:
    """``N`` prompts, each with a chosen and a rejected completion (token ids)."""

    prompts: Tensor  # (N, P)
    chosen: Tensor  # (N, L)
    rejected: Tensor  # (N, L)
    noise_free: Tensor  # (N,) True where the label agrees with the labeler (not flipped, no tie)

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, index: Tensor) -> PreferencePairs:
        """The pairs at ``index``."""
        return PreferencePairs(
            self.prompts[index], self.chosen[index], self.rejected[index], self.noise_free[index]
        )


def review_prompts(split: str, n: int, prompt_tokens: int, tokenizer) -> Tensor:
    """The first ``prompt_tokens`` GPT-2 tokens of ``n`` review snippets, ``(n, prompt_tokens)``."""
    texts = sentiment_splits()[split].texts
    prompts = []
    for text in texts:
        ids = tokenizer.encode_ordinary(text)
        if len(ids) >= prompt_tokens:
            prompts.append(ids[:prompt_tokens])
        if len(prompts) == n:
            break
    if len(prompts) < n:
        raise UsageError(f"only {len(prompts)} '{split}' snippets have {prompt_tokens} tokens")
    return torch.tensor(prompts)


def sample_completions(
    policy: GPT, prompts: Tensor, length: int, generator: torch.Generator, batch_size: int = 64
) -> Tensor:
    """One sampled continuation of ``length`` tokens per prompt, ``(N, length)``."""
    policy.eval()
    chunks = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]  # (B, P)
        tokens = policy.generate(batch, length, temperature=1.0, generator=generator)
        chunks.append(tokens[:, batch.size(1) :])  # (B, L)
    return torch.cat(chunks)


def decode(tokenizer, completions: Tensor) -> list[str]:
    """Text of each row of token ids."""
    return [tokenizer.decode(row.tolist()) for row in completions]


def build_preference_pairs(
    policy: GPT,
    prompts: Tensor,
    labeler: Labeler,
    tokenizer,
    completion_tokens: int,
    label_noise: float,
    generator: torch.Generator,
    samples_per_prompt: int = 2,
) -> PreferencePairs:
    """Sample ``samples_per_prompt`` completions per prompt; the labeler (plus noise) ranks them.

    The best completion is "chosen" and the worst "rejected": with more than two
    samples the pair has a wider margin under the labeler, so fewer labels are
    coin flips between two near-equal texts. When every sample of a prompt ties,
    a coin picks the order of the first two. Each label is then flipped with
    probability ``label_noise``.
    """
    if not 0.0 <= label_noise < 0.5:
        raise UsageError(f"label noise must be in [0, 0.5), got {label_noise}")
    if samples_per_prompt < 2:
        raise UsageError(f"a pair needs at least 2 samples per prompt, got {samples_per_prompt}")
    samples = torch.stack(
        [
            sample_completions(policy, prompts, completion_tokens, generator)
            for _ in range(samples_per_prompt)
        ],
        dim=1,
    )  # (N, K, L)
    scores = labeler(decode(tokenizer, samples.flatten(0, 1))).view(len(prompts), -1)  # (N, K)
    best, worst = scores.argmax(1), scores.argmin(1)  # (N,)
    tied = scores.max(1).values == scores.min(1).values
    coin = (torch.rand(len(prompts), generator=generator) < 0.5).long()
    best = torch.where(tied, coin, best)
    worst = torch.where(tied, 1 - coin, worst)
    flipped = torch.rand(len(prompts), generator=generator) < label_noise
    chosen_index = torch.where(flipped, worst, best)[:, None, None]  # (N, 1, 1)
    rejected_index = torch.where(flipped, best, worst)[:, None, None]
    chosen = samples.gather(1, chosen_index.expand(-1, 1, samples.size(2))).squeeze(1)  # (N, L)
    rejected = samples.gather(1, rejected_index.expand(-1, 1, samples.size(2))).squeeze(1)
    return PreferencePairs(prompts, chosen, rejected, ~flipped & ~tied)
