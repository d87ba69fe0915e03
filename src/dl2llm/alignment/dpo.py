"""Direct Preference Optimization (Rafailov et al., 2023), the loss written out.

RLHF (Stiennon et al., 2020; Ouyang et al., 2022) fits a reward model to human
preferences and then maximises it with PPO under a KL penalty to a reference
model. DPO notices that the optimal policy of that KL-regularised problem is
``pi(y|x) ∝ pi_ref(y|x) exp(r(x, y) / beta)``, so the reward is implicit in the
policy: ``r(x, y) = beta * log(pi(y|x) / pi_ref(y|x))`` (+ a term that cancels).
Putting that into the Bradley-Terry preference model gives a plain classification
loss on pairs (chosen ``y_w``, rejected ``y_l``)::

    loss = -log sigmoid(beta * [(log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l))])

where ``log pi(y)`` is the summed log-probability of the completion tokens.
``trl``'s ``DPOTrainer`` (its ``"sigmoid"`` loss) computes the same; the exercise
``dpo_loss`` checks the two against each other.

:func:`train_dpo` tunes a LoRA-wrapped causal LM on preference pairs with this
loss; the reference is the same model with its adapter off, and its log-probs
are computed once before training. :func:`completion_logps` scores padded
batches, as ``trl`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from dl2llm.alignment.policy import reference_of, token_logps
from dl2llm.alignment.preferences import PreferencePairs


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair DPO losses and the implicit rewards of the chosen and rejected completions.

    Every input is ``(B,)``: summed completion log-probabilities under the policy
    and the frozen reference model. Returns ``(losses, chosen_rewards,
    rejected_rewards)``, each ``(B,)``; the training loss is ``losses.mean()``.
    """
    chosen_logratios = policy_chosen_logps - ref_chosen_logps  # (B,)
    rejected_logratios = policy_rejected_logps - ref_rejected_logps  # (B,)
    losses = -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))  # stable for any margin
    return losses, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


def completion_logps(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    completion_mask: torch.Tensor,
) -> torch.Tensor:
    """Summed log-probability of the completion tokens of each sequence, ``(B,)``.

    ``input_ids``, ``attention_mask`` and ``completion_mask`` are ``(B, T)``; the
    token at position ``t + 1`` is scored by the logits at position ``t``.
    """
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, T, V)
    log_probs = logits[:, :-1].log_softmax(dim=-1)  # (B, T - 1, V)
    next_tokens = input_ids[:, 1:].unsqueeze(-1)  # (B, T - 1, 1)
    token_logps = log_probs.gather(-1, next_tokens).squeeze(-1)  # (B, T - 1)
    return (token_logps * completion_mask[:, 1:]).sum(dim=1)  # (B,)


@dataclass(frozen=True)
class DPOConfig:
    """Settings of :func:`train_dpo`: ``epochs`` passes over the pairs in minibatches."""

    epochs: int = 1
    batch_size: int = 4
    learning_rate: float = 2e-3  # 1e-2 drove the KL to 55-116 nats in 12 steps
    beta: float = 0.1


@dataclass
class DPOHistory:
    """Mean loss and implicit-reward accuracy (chosen beats rejected) of each step's batch."""

    losses: list[float]
    accuracies: list[float]


def pair_logps(model: torch.nn.Module, pairs: PreferencePairs) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed completion log-probs ``(N,)`` of the chosen and the rejected completions."""
    prompts = pairs.requests.ids
    sequences = torch.cat(
        [torch.cat([prompts, pairs.chosen], 1), torch.cat([prompts, pairs.rejected], 1)]
    )  # (2N, P + L): one forward pass for both halves
    logps, _ = token_logps(model, sequences, prompts.size(1))
    return logps.sum(1).chunk(2)


def train_dpo(
    policy: torch.nn.Module,
    pairs: PreferencePairs,
    config: DPOConfig,
    generator: torch.Generator,
    progress: bool = True,
) -> DPOHistory:
    """Tune ``policy``'s trainable parameters (its LoRA) on ``pairs`` with :func:`dpo_loss`."""
    policy.eval()  # no dropout, as for the reference
    with torch.no_grad(), reference_of(policy)():
        ref = [pair_logps(policy, pairs.subset(torch.arange(i, min(i + 32, len(pairs)))))
               for i in range(0, len(pairs), 32)]  # fmt: skip
    ref_chosen = torch.cat([c for c, _ in ref])  # (N,)
    ref_rejected = torch.cat([r for _, r in ref])
    trainable = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=config.learning_rate)
    history = DPOHistory([], [])
    steps = [
        order[i : i + config.batch_size]
        for order in (torch.randperm(len(pairs), generator=generator) for _ in range(config.epochs))
        for i in range(0, len(pairs), config.batch_size)
    ]
    for idx in tqdm(steps, desc="DPO", disable=not progress):
        chosen, rejected = pair_logps(policy, pairs.subset(idx))
        losses, chosen_rewards, rejected_rewards = dpo_loss(
            chosen, rejected, ref_chosen[idx], ref_rejected[idx], config.beta
        )
        optimizer.zero_grad()
        losses.mean().backward()
        optimizer.step()
        history.losses.append(losses.mean().item())
        history.accuracies.append((chosen_rewards > rejected_rewards).float().mean().item())
    return history
