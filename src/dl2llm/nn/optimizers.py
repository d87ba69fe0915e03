"""SGD, momentum, Adam and AdamW written from scratch.

Each optimizer turns a gradient ``g_t`` into a parameter update. They follow the
exact update rules of ``torch.optim`` so the tests can compare them step for step:

- SGD with momentum (Polyak 1964; Sutskever et al. 2013 for Nesterov)::

      b_t = mu * b_{t-1} + g_t          (b_1 = g_1)
      p  -= lr * (g_t + mu * b_t if nesterov else b_t)

- Adam (Kingma & Ba, 2015), with bias correction::

      m_t = beta1 * m + (1 - beta1) * g        v_t = beta2 * v + (1 - beta2) * g^2
      p  -= lr / (1 - beta1^t) * m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + eps)

- AdamW (Loshchilov & Hutter, 2019) decouples weight decay from the gradient:
  ``p *= 1 - lr * wd`` before the Adam step, instead of adding ``wd * p`` to ``g``
  (which is what "L2 regularisation" in Adam does, and why it works worse).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


class SGD(torch.optim.Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 0.01,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        if lr <= 0 or momentum < 0 or weight_decay < 0:
            raise ValueError("lr must be > 0; momentum and weight_decay must be >= 0")
        if nesterov and momentum == 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad + group["weight_decay"] * p if group["weight_decay"] else p.grad
                if group["momentum"]:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = grad.clone()
                    else:
                        state["momentum_buffer"].mul_(group["momentum"]).add_(grad)
                    buffer = state["momentum_buffer"]
                    grad = grad + group["momentum"] * buffer if group["nesterov"] else buffer
                p.add_(grad, alpha=-group["lr"])
        return loss


class Adam(torch.optim.Optimizer):
    """Adam; ``decoupled=True`` gives AdamW (see :class:`AdamW`)."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled: bool = False,
    ):
        if lr <= 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1) or eps <= 0:
            raise ValueError("need lr > 0, 0 <= betas < 1 and eps > 0")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)
        self.decoupled = decoupled

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, wd = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if wd and self.decoupled:
                    p.mul_(1 - lr * wd)  # AdamW: decay the weights directly
                elif wd:
                    grad = grad + wd * p  # Adam: L2 penalty folded into the gradient
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                t, m, v = state["step"], state["m"], state["v"]
                m.lerp_(grad, 1 - beta1)  # m = beta1 m + (1 - beta1) g
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                bias1, bias2 = 1 - beta1**t, 1 - beta2**t
                denom = (v.sqrt() / bias2**0.5).add_(group["eps"])
                p.addcdiv_(m, denom, value=-lr / bias1)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019)."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled=True)


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda params, lr, wd=0.0: SGD(params, lr=lr, weight_decay=wd),
    "momentum": lambda params, lr, wd=0.0: SGD(params, lr=lr, momentum=0.9, weight_decay=wd),
    "adam": lambda params, lr, wd=0.0: Adam(params, lr=lr, weight_decay=wd),
    "adamw": lambda params, lr, wd=0.01: AdamW(params, lr=lr, weight_decay=wd),
}
