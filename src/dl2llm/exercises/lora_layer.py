"""Exercise ``lora_layer``: a LoRA-wrapped linear layer (week 4).

Mirrors :class:`dl2llm.finetune.lora.LoRALinear`; the reference is ``peft``'s LoRA
layer on the same ``nn.Linear`` with the same ``A`` and ``B``: outputs and
gradients.
"""

from __future__ import annotations

from types import SimpleNamespace

from dl2llm.exercises.framework import Case, Exercise

TEMPLATE = '''"""Exercise lora_layer: Low-Rank Adaptation (Hu et al., 2021).

A frozen linear layer W (d_out, d_in) gets a trainable low-rank update:

    h = W x + b + (alpha / r) * B A x,    A: (r, d_in), B: (d_out, r)

A starts random (Kaiming-uniform, as nn.Linear initialises its weight) and B
starts at zero, so at initialisation the layer computes exactly what W did.
Check with: dl2llm exercise check lora_layer
"""

import math

import torch
from torch import nn


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update ``(alpha / r) B A``."""

    def __init__(self, base: nn.Linear, r: int, alpha: float):
        """Keep ``base`` (frozen: requires_grad False), create ``self.lora_A`` (r, d_in)
        and ``self.lora_B`` (d_out, r) as nn.Parameter, and ``self.scaling = alpha / r``.
        Raise ValueError if r is not positive.
        """
        super().__init__()
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., d_in) -> (..., d_out)."""
        # out = self.base(x)                        # (..., d_out)
        # low_rank = x @ self.lora_A.T              # (..., r)
        # return out + scaling * low_rank @ B.T     # (..., d_out)
        raise NotImplementedError
'''


def _library() -> SimpleNamespace:
    from dl2llm.finetune.lora import LoRALinear

    return SimpleNamespace(LoRALinear=LoRALinear)


def _one_layer_model(base):
    """``base`` as the ``proj`` of a model, for peft to find by name."""
    from torch import nn

    class OneLayer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = base

        def forward(self, x):
            return self.proj(x)

    return OneLayer()


def _layers(d_in: int, d_out: int, seed: int):
    import torch

    torch.manual_seed(seed)
    base = torch.nn.Linear(d_in, d_out).double()
    generator = torch.Generator().manual_seed(seed + 100)
    x = torch.randn(3, 2, d_in, generator=generator, dtype=torch.float64)
    return base, x


def _ours(code, d_in, d_out, r, alpha, seed, randomize):
    import copy

    import torch

    base, x = _layers(d_in, d_out, seed)
    layer = code.LoRALinear(copy.deepcopy(base), r, alpha)
    if randomize:
        generator = torch.Generator().manual_seed(seed + 200)
        with torch.no_grad():
            layer.lora_A.copy_(torch.randn(r, d_in, generator=generator, dtype=torch.float64))
            layer.lora_B.copy_(torch.randn(d_out, r, generator=generator, dtype=torch.float64))
    x = x.clone().requires_grad_()
    out = layer(x)
    out.square().sum().backward()
    return [out.detach(), x.grad]


def _peft(d_in, d_out, r, alpha, seed, randomize):
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    base, x = _layers(d_in, d_out, seed)
    model = get_peft_model(
        _one_layer_model(copy.deepcopy(base)),
        LoraConfig(r=r, lora_alpha=alpha, target_modules=["proj"]),
    )
    lora = model.base_model.model.proj
    if randomize:
        generator = torch.Generator().manual_seed(seed + 200)
        with torch.no_grad():
            lora.lora_A["default"].weight.copy_(
                torch.randn(r, d_in, generator=generator, dtype=torch.float64)
            )
            lora.lora_B["default"].weight.copy_(
                torch.randn(d_out, r, generator=generator, dtype=torch.float64)
            )
    x = x.clone().requires_grad_()
    out = lora(x)
    out.square().sum().backward()
    return [out.detach(), x.grad]


def _trainable(code):
    base, _ = _layers(6, 5, 0)
    layer = code.LoRALinear(base, 2, 4)
    return sorted((name, tuple(p.shape)) for name, p in layer.named_parameters() if p.requires_grad)


def _rejects_rank_zero(code) -> str:
    import torch

    try:
        code.LoRALinear(torch.nn.Linear(4, 4), 0, 1.0)
    except NotImplementedError:
        raise
    except Exception as err:  # the library raises a UsageError (a ValueError)
        return "raises" if isinstance(err, ValueError) else f"raises {type(err).__name__}"
    return "accepted r=0"


def _cases() -> list[Case]:
    settings = {
        "r=4, alpha=8, random A and B": (8, 6, 4, 8, 1, True),
        "r=1, alpha=1, random A and B": (5, 7, 1, 1, 2, True),
        "r=8, alpha=16 at initialisation (B = 0: same as the base layer)": (8, 6, 8, 16, 3, False),
    }
    cases = [
        Case(
            f"{name}: outputs and input gradients vs peft",
            lambda code, s=s: _ours(code, *s),
            lambda s=s: _peft(*s),
            atol=1e-10,
            rtol=1e-8,
        )
        for name, s in settings.items()
    ]
    cases.append(
        Case(
            "only lora_A (r, d_in) and lora_B (d_out, r) train; the base is frozen",
            _trainable,
            lambda: [("lora_A", (2, 6)), ("lora_B", (5, 2))],
        )
    )
    cases.append(Case("r=0 raises ValueError", _rejects_rank_zero, lambda: "raises"))
    return cases


EXERCISE = Exercise(
    name="lora_layer",
    title="The LoRA layer",
    week=4,
    mirrors=("dl2llm.finetune.lora.LoRALinear",),
    template=TEMPLATE,
    cases=_cases,
    library=_library,
)
