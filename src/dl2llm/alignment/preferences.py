"""The RLHF task: review requests whose prompt matters, a true reward, and preference pairs.

RLHF (Christiano et al., 2017; Stiennon et al., 2020; Ouyang et al., 2022) does
not ask people for the right answer; it asks which of two answers is better.
Here a fixed program plays the human. The policy (SmolLM2-135M-Instruct) gets a
chat request such as "Write a negative review of the hotel in one sentence."
and writes a fixed number of tokens (as in Ziegler et al., 2019, whose
sentiment task used fixed-length continuations). The *true reward* of a
completion is the probability, under a sentiment classifier, of the polarity the
request asked for: the same completion earns a high reward after "positive" and
a low one after "negative", so reward and reward model must read the prompt.

Two classifiers give the probability of "positive":

* :class:`SentimentLabeler` -- the week 3 fine-tuned MiniLM sentiment classifier;
* :class:`LexiconLabeler` -- ``sigmoid(# positive words - # negative words)``, a
  rule that needs no trained model (quick runs on a fresh machine).

Preference pairs: two completions of the same request, the one with the higher
true reward "chosen"; each label is flipped with a small probability (label
noise: real labelers disagree with themselves).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

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
TRAIN_TOPICS = (
    "film movie hotel restaurant book album show play game phone car camera concert museum "
    "park cafe bakery novel series podcast laptop bike sandwich pizza"
).split()
EVAL_TOPICS = "burger garden beach zoo theatre song festival gym".split()
POLARITIES = ("negative", "positive")  # index = the label asked for (1 = positive)


class Labeler(Protocol):
    """Probability ``(N,)`` that each text is positive."""

    def __call__(self, texts: list[str]) -> Tensor: ...


class LexiconLabeler:
    """Rule-based labeler: ``sigmoid(# positive words - # negative words)`` of each text."""

    def __call__(self, texts: list[str]) -> Tensor:
        return torch.sigmoid(lexicon_counts(texts))


def lexicon_counts(texts: list[str]) -> Tensor:
    """``# positive words - # negative words`` of each text, ``(N,)``."""
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
class Requests:
    """``N`` chat requests: their texts, token ids ``(N, P)`` and the polarity asked ``(N,)``."""

    texts: list[str]
    ids: Tensor  # (N, P)
    polarity: Tensor  # (N,) 1 = asked for a positive review, 0 = negative

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index: Tensor) -> Requests:
        """The requests at ``index`` ``(M,)``."""
        return Requests(
            [self.texts[i] for i in index.tolist()], self.ids[index], self.polarity[index]
        )

    def repeat(self, times: int) -> Requests:
        """Each request ``times`` times in a row (``[a, a, b, b]`` for 2)."""
        return self.subset(torch.arange(len(self)).repeat_interleave(times))


def request_text(topic: str, polarity: str) -> str:
    """The user's words, e.g. ``"Write a negative review of the hotel in one sentence."``."""
    return f"Write a {polarity} review of the {topic} in one sentence."


def chat_prompt(text: str) -> str:
    """SmolLM2's chat format for one user turn, ending where the assistant starts."""
    return f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"


def review_requests(topics: list[str] | tuple[str, ...], tokenizer) -> Requests:
    """One negative and one positive request per topic, kept if all have the same length.

    Equal lengths make every batch a plain ``(B, P)`` tensor with no padding;
    topics whose prompt tokenizes longer than the most common length are dropped.
    """
    texts = [request_text(t, p) for t in topics for p in POLARITIES]
    ids = [tokenizer(chat_prompt(text))["input_ids"] for text in texts]
    lengths = [len(row) for row in ids]
    common = max(set(lengths), key=lengths.count)
    keep = [i for i, n in enumerate(lengths) if n == common]
    if not keep:
        raise UsageError("no review request could be tokenized")
    return Requests(
        [texts[i] for i in keep],
        torch.tensor([ids[i] for i in keep]),
        torch.tensor([i % 2 for i in keep]),
    )


@dataclass(frozen=True)
class TrueReward:
    """The reward we want: the labeler's probability of the polarity each request asked for."""

    labeler: Labeler

    def __call__(self, polarity: Tensor, completions: list[str]) -> Tensor:
        """Rewards ``(N,)`` in ``[0, 1]`` of completion texts given the asked polarity ``(N,)``."""
        positive = self.labeler(completions)  # (N,)
        return torch.where(polarity.bool(), positive, 1.0 - positive)


@dataclass(frozen=True)
class PreferencePairs:
    """``N`` requests, each with a chosen and a rejected completion (token ids)."""

    requests: Requests
    chosen: Tensor  # (N, L)
    rejected: Tensor  # (N, L)
    noise_free: Tensor  # (N,) True where the label agrees with the scorer (not flipped, no tie)

    def __len__(self) -> int:
        return len(self.requests)

    def subset(self, index: Tensor) -> PreferencePairs:
        """The pairs at ``index``."""
        return PreferencePairs(
            self.requests.subset(index), self.chosen[index], self.rejected[index],
            self.noise_free[index],
        )  # fmt: skip


def rank_pairs(
    requests: Requests,
    first: Tensor,
    second: Tensor,
    first_scores: Tensor,
    second_scores: Tensor,
    label_noise: float,
    generator: torch.Generator,
) -> PreferencePairs:
    """Chosen = the completion ``(N, L)`` with the higher score ``(N,)``; flip ``label_noise``.

    Ties are broken by a coin.
    """
    if not 0.0 <= label_noise < 0.5:
        raise UsageError(f"label noise must be in [0, 0.5), got {label_noise}")
    tied = first_scores == second_scores
    coin = torch.rand(len(requests), generator=generator) < 0.5
    first_wins = torch.where(tied, coin, first_scores > second_scores)
    flipped = torch.rand(len(requests), generator=generator) < label_noise
    first_chosen = (first_wins ^ flipped)[:, None]  # (N, 1)
    chosen = torch.where(first_chosen, first, second)
    rejected = torch.where(first_chosen, second, first)
    return PreferencePairs(requests, chosen, rejected, ~flipped & ~tied)
