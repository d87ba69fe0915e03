"""Exercise ``adam_step``: the Adam / AdamW update, written as a ``torch.optim.Optimizer`` (week 1).

Mirrors :class:`dl2llm.nn.optimizers.Adam`; the reference is ``torch.optim.Adam``
and ``torch.optim.AdamW`` run on the same parameters and gradients.
"""

from __future__ import annotations

from types import SimpleNamespace

from dl2llm.exercises.framework import Case, Exercise

TEMPLATE = '''"""Exercise adam_step: Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019).

For every parameter p with gradient g, at step t = 1, 2, ...:

    m = beta1 * m + (1 - beta1) * g          v = beta2 * v + (1 - beta2) * g^2
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

Weight decay wd: Adam adds wd * p to g (L2); AdamW (decoupled=True) instead
multiplies p by (1 - lr * wd) before the update. Check with:
dl2llm exercise check adam_step
"""

import torch


class Adam(torch.optim.Optimizer):
    """Adam; ``decoupled=True`` gives AdamW."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled: bool = False,
    ):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)
        self.decoupled = decoupled

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient (skip those whose .grad is None).

        Keep per-parameter state in self.state[p]: the step count t, m and v
        (same shape as p), created as zeros on the first step.
        """
        # for group in self.param_groups:       # lr, betas, eps, weight_decay
        #     for p in group["params"]:         # p, p.grad: same shape
        raise NotImplementedError
'''


def _library() -> SimpleNamespace:
    from dl2llm.nn.optimizers import Adam

    return SimpleNamespace(Adam=Adam)


def _loss(params):
    import torch

    first, second = params
    return ((first - 1.0) ** 2).sum() + torch.sin(3 * first).sum() + (second**4).sum()


def _trajectory(make_optimizer, steps: int, frozen_second: bool = False):
    import torch

    generator = torch.Generator().manual_seed(0)
    first = torch.randn(3, 4, generator=generator, dtype=torch.float64).requires_grad_()
    second = torch.randn(5, generator=generator, dtype=torch.float64).requires_grad_()
    optimizer = make_optimizer([first, second])
    for _ in range(steps):
        optimizer.zero_grad()
        loss = _loss([first, second * 0.0 if frozen_second else second])
        loss.backward()
        if frozen_second:
            second.grad = None
        optimizer.step()
    return [first.detach().clone(), second.detach().clone()]


def _cases() -> list[Case]:
    import torch

    settings = {
        "Adam defaults, 5 steps": (dict(lr=0.01), torch.optim.Adam, {}, 5, False),
        "Adam lr=0.1 betas=(0.5, 0.9), 20 steps": (
            dict(lr=0.1, betas=(0.5, 0.9)),
            torch.optim.Adam,
            {},
            20,
            False,
        ),
        "Adam with L2 weight_decay=0.1": (
            dict(lr=0.05, weight_decay=0.1),
            torch.optim.Adam,
            {},
            10,
            False,
        ),
        "AdamW (decoupled=True) weight_decay=0.1": (
            dict(lr=0.05, weight_decay=0.1),
            torch.optim.AdamW,
            dict(decoupled=True),
            10,
            False,
        ),
        "a parameter whose .grad is None is left alone": (
            dict(lr=0.05),
            torch.optim.Adam,
            {},
            3,
            True,
        ),
    }
    return [
        Case(
            f"{name} vs {reference.__module__}.{reference.__name__}",
            lambda code, kw=kw, extra=extra, steps=steps, frozen=frozen: _trajectory(
                lambda params: code.Adam(params, **kw, **extra), steps, frozen
            ),
            lambda kw=kw, reference=reference, steps=steps, frozen=frozen: _trajectory(
                lambda params: reference(params, **kw), steps, frozen
            ),
            atol=1e-9,
            rtol=1e-7,
        )
        for name, (kw, reference, extra, steps, frozen) in settings.items()
    ]


EXERCISE = Exercise(
    name="adam_step",
    title="An optimizer step: Adam and AdamW",
    week=1,
    mirrors=("dl2llm.nn.optimizers.Adam", "dl2llm.nn.optimizers.AdamW"),
    template=TEMPLATE,
    cases=_cases,
    library=_library,
)
