"""Exercise ``skipgram_loss``: word2vec's skip-gram negative-sampling loss (week 3).

Mirrors :func:`dl2llm.embeddings.word2vec.sgns_loss`; the reference is the same
loss written with ``torch.nn.functional.binary_cross_entropy_with_logits``
(label 1 for the observed context word, 0 for each noise word), values and
gradients.
"""

from __future__ import annotations

from types import SimpleNamespace

from dl2llm.exercises.framework import Case, Exercise

TEMPLATE = '''"""Exercise skipgram_loss: skip-gram with negative sampling (Mikolov et al., 2013).

For a centre word vector v_c, its observed context vector u_o and K noise
context vectors u_1..u_K, the loss is

    -log sigmoid(u_o . v_c) - sum_k log sigmoid(-u_k . v_c)

Use a numerically stable log-sigmoid (large scores must not give inf or nan).
Check with: dl2llm exercise check skipgram_loss
"""

import torch


def sgns_loss(centre: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """The loss of each (centre, context) pair.

    centre: (B, D) vectors v_c; context: (B, D) vectors u_o; negatives: (B, K, D).
    Returns (B,). Must be differentiable (built from torch operations).
    """
    # positive_score = ...    # (B,)
    # negative_score = ...    # (B, K)
    raise NotImplementedError
'''


def _library() -> SimpleNamespace:
    from dl2llm.embeddings.word2vec import sgns_loss

    return SimpleNamespace(sgns_loss=sgns_loss)


def _reference_loss(centre, context, negatives):
    import torch
    import torch.nn.functional as F

    positive = (centre * context).sum(-1)  # (B,)
    negative = torch.einsum("bkd,bd->bk", negatives, centre)  # (B, K)
    ones, zeros = torch.ones_like(positive), torch.zeros_like(negative)
    return F.binary_cross_entropy_with_logits(
        positive, ones, reduction="none"
    ) + F.binary_cross_entropy_with_logits(negative, zeros, reduction="none").sum(-1)


def _loss_and_grads(loss_fn, batch: int, k: int, dim: int, seed: int, scale: float):
    import torch

    generator = torch.Generator().manual_seed(seed)
    tensors = [
        (torch.randn(*shape, generator=generator, dtype=torch.float64) * scale).requires_grad_()
        for shape in ((batch, dim), (batch, dim), (batch, k, dim))
    ]
    loss = loss_fn(*tensors)
    loss.sum().backward()
    return [loss.detach(), *(t.grad for t in tensors)]


def _cases() -> list[Case]:
    settings = {
        "B=4, D=8, K=5": (4, 5, 8, 1, 1.0),
        "one noise word (K=1), B=3": (3, 1, 6, 2, 1.0),
        "batch of one, K=10": (1, 10, 4, 3, 1.0),
        "large scores (vectors x 20): stable log-sigmoid": (5, 3, 8, 4, 20.0),
    }
    return [
        Case(
            f"{name}: loss and gradients vs binary_cross_entropy_with_logits",
            lambda code, s=s: _loss_and_grads(code.sgns_loss, *s),
            lambda s=s: _loss_and_grads(_reference_loss, *s),
            atol=1e-9,
            rtol=1e-7,
        )
        for name, s in settings.items()
    ]


EXERCISE = Exercise(
    name="skipgram_loss",
    title="Skip-gram negative-sampling loss",
    week=3,
    mirrors=("dl2llm.embeddings.word2vec.sgns_loss",),
    template=TEMPLATE,
    cases=_cases,
    library=_library,
)
