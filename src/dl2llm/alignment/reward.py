"""A Bradley-Terry reward model: a scalar score learned from pairwise preferences.

The Bradley-Terry model (Bradley & Terry, 1952) says a text with reward ``r_w``
beats one with reward ``r_l`` with probability ``sigmoid(r_w - r_l)``. Fitting
``r`` to "chosen beats rejected" pairs by maximum likelihood gives the loss that
RLHF reward models use (Christiano et al., 2017; Stiennon et al., 2020;
Ouyang et al., 2022) and that ``trl``'s ``RewardTrainer`` computes::

    loss = -log sigmoid(r(chosen) - r(rejected))

Only differences of rewards are identified, so the scale and offset of ``r`` are
arbitrary. A reward model must read the prompt as well as the completion (is
"a dull film" good? Only if a negative review was asked for). Ours reads the
request and the completion together as one input pair, ``[CLS] request [SEP]
completion [SEP]``, with the frozen MiniLM sentence encoder (mean-pooled token
states, Reimers & Gurevych, 2019), so attention mixes the two, and trains a
small head on top: cheap enough to score every PPO rollout.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dl2llm.models import load_encoder


def bradley_terry_loss(chosen_rewards: Tensor, rejected_rewards: Tensor) -> Tensor:
    """Mean ``-log sigmoid(r_chosen - r_rejected)`` over the pairs; inputs ``(N,)``."""
    return -F.logsigmoid(chosen_rewards - rejected_rewards).mean()


def pairwise_accuracy(chosen_rewards: Tensor, rejected_rewards: Tensor) -> float:
    """Fraction of pairs in which the chosen completion gets the higher reward."""
    return (chosen_rewards > rejected_rewards).float().mean().item()


class TextEncoder:
    """Frozen MiniLM: texts (or text pairs) to mean-pooled embeddings ``(N, 384)``."""

    def __init__(self) -> None:
        self.model, self.tokenizer = load_encoder()
        for param in self.model.parameters():
            param.requires_grad_(False)

    @torch.no_grad()
    def __call__(
        self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 128
    ) -> Tensor:
        chunks = []
        for start in range(0, len(texts), batch_size):
            second = None if pairs is None else pairs[start : start + batch_size]
            enc = self.tokenizer(
                texts[start : start + batch_size],
                second,
                padding=True,
                truncation=True,
                max_length=64,
                return_tensors="pt",
            )
            states = self.model(**enc).last_hidden_state  # (B, T, H)
            mask = enc["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
            chunks.append((states * mask).sum(1) / mask.sum(1).clamp(min=1.0))  # (B, H)
        return torch.cat(chunks)


class RewardHead(nn.Module):
    """An embedding ``(N, H)`` to a scalar reward ``(N,)``: linear, or one hidden layer.

    ``hidden=0`` is a linear map. Whether a review fits the request is an
    interaction (positive words are good after "positive", bad after
    "negative"), which a small hidden layer can represent more easily.
    """

    def __init__(self, embedding_dim: int, hidden: int = 0) -> None:
        super().__init__()
        if hidden:
            self.net = nn.Sequential(
                nn.Linear(embedding_dim, hidden), nn.GELU(), nn.Linear(hidden, 1)
            )
        else:
            self.net = nn.Linear(embedding_dim, 1)

    def forward(self, embeddings: Tensor) -> Tensor:
        return self.net(embeddings).squeeze(-1)  # (N,)


class RewardModel:
    """Scores (request, completion) texts: frozen encoder + trained head, normalised.

    The head's scores are shifted and scaled to ``(score - offset) / scale``; with
    the mean and standard deviation of the reference policy's completions, as
    Ziegler et al. (2019) do, a reference sample scores 0 on average and a KL
    penalty coefficient means the same thing whatever scale training gave the head.
    """

    def __init__(
        self, encoder: TextEncoder, head: RewardHead, offset: float = 0.0, scale: float = 1.0
    ) -> None:
        self.encoder, self.head = encoder, head
        self.offset, self.scale = offset, scale

    @torch.no_grad()
    def __call__(self, requests: list[str], completions: list[str]) -> Tensor:
        self.head.eval()
        scores = self.head(self.encoder(requests, completions))  # (N,)
        return (scores - self.offset) / self.scale


@dataclass(frozen=True)
class RewardTrainingResult:
    """Loss per epoch, the epoch kept, and pairwise accuracies of the trained head."""

    losses: list[float]
    best_epoch: int
    train_accuracy: float
    heldout_accuracy: float


def train_reward_head(
    head: RewardHead,
    train: tuple[Tensor, Tensor],
    heldout: tuple[Tensor, Tensor],
    epochs: int = 200,
    learning_rate: float = 3e-3,
    weight_decay: float = 1e-2,
    validation: tuple[Tensor, Tensor] | None = None,
) -> RewardTrainingResult:
    """Fit ``head`` by full-batch AdamW on ``(chosen, rejected)`` embeddings, each ``(N, H)``.

    With ``validation`` pairs, training stops early: the head keeps the weights of
    the epoch with the lowest validation loss (a few hundred noisy pairs are easy
    to overfit). ``heldout`` is only measured, never used to choose anything.
    """
    optimizer = torch.optim.AdamW(head.parameters(), lr=learning_rate, weight_decay=weight_decay)
    losses, best_loss, best_epoch = [], float("inf"), epochs
    best_state = copy.deepcopy(head.state_dict())
    for epoch in range(1, epochs + 1):
        head.train()
        loss = bradley_terry_loss(head(train[0]), head(train[1]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if validation is not None:
            head.eval()
            with torch.no_grad():
                validation_loss = bradley_terry_loss(head(validation[0]), head(validation[1]))
            if validation_loss.item() < best_loss:
                best_loss, best_epoch = validation_loss.item(), epoch
                best_state = copy.deepcopy(head.state_dict())
    if validation is not None:
        head.load_state_dict(best_state)
    head.eval()
    with torch.no_grad():
        train_accuracy = pairwise_accuracy(head(train[0]), head(train[1]))
        heldout_accuracy = pairwise_accuracy(head(heldout[0]), head(heldout[1]))
    return RewardTrainingResult(losses, best_epoch, train_accuracy, heldout_accuracy)
