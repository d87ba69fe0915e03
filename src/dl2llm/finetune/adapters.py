"""Houlsby adapters: small bottleneck layers inside a frozen network (Houlsby et al., 2019).

"Parameter-Efficient Transfer Learning for NLP" (ICML 2019, arXiv:1902.00751)
inserts a tiny two-layer network after each sublayer of every Transformer block
(after the attention output projection and after the feed-forward network),
before the residual addition:

    adapter(h) = h + W_up f(W_down h)      W_down: (m, d), W_up: (d, m), m << d

Only the adapters train (the paper also trains the layer norms and the task
head). ``W_up`` starts at zero here, so each adapter is exactly the identity at
initialisation and the adapted model computes what the pretrained one did; the
paper uses a near-zero initialisation for the same reason. Each adapter costs
``2 m d + m + d`` parameters.

For GPT-2 the sublayer outputs are ``attn.c_proj`` and ``mlp.c_proj``; for
Llama-family models (SmolLM2) they are ``self_attn.o_proj`` and ``mlp.down_proj``.
"""

from __future__ import annotations

import torch
from torch import nn

from dl2llm.finetune.lora import freeze, matches, replace_module
from dl2llm.runtime import UsageError

GPT2_ADAPTER_TARGETS = (r"attn\.c_proj", r"mlp\.c_proj")
LLAMA_ADAPTER_TARGETS = (r"self_attn\.o_proj", r"mlp\.down_proj")


class Adapter(nn.Module):
    """Bottleneck ``h + up(gelu(down(h)))``, the identity at initialisation."""

    def __init__(self, d_model: int, bottleneck: int) -> None:
        super().__init__()
        self.down = nn.Linear(d_model, bottleneck)
        self.up = nn.Linear(bottleneck, d_model)
        self.act = nn.GELU()
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(self.act(self.down(h)))  # (..., d_model)


class WithAdapter(nn.Module):
    """A frozen sublayer followed by an :class:`Adapter` on its output."""

    def __init__(self, sublayer: nn.Module, d_model: int, bottleneck: int) -> None:
        super().__init__()
        self.sublayer = sublayer
        weight = next(sublayer.parameters())
        self.adapter = Adapter(d_model, bottleneck).to(weight.device, weight.dtype)

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self.adapter(self.sublayer(*args, **kwargs))


def _output_width(module: nn.Module) -> int:
    if hasattr(module, "out_features"):
        return module.out_features
    if hasattr(module, "nf"):  # GPT-2 Conv1D
        return module.nf
    raise UsageError(f"cannot tell the output width of {type(module).__name__}")


def inject_adapters(
    model: nn.Module,
    target_patterns: list[str] | tuple[str, ...] = GPT2_ADAPTER_TARGETS,
    bottleneck: int = 16,
    train_layer_norms: bool = True,
) -> list[str]:
    """Freeze ``model`` and put an adapter after every module matching ``target_patterns``.

    With ``train_layer_norms`` (as in the paper) the LayerNorm/RMSNorm weights
    train too. Returns the names of the wrapped modules.
    """
    if bottleneck <= 0:
        raise UsageError(f"adapter bottleneck must be positive, got {bottleneck}")
    targets = [name for name, _ in model.named_modules() if name and matches(name, target_patterns)]
    if not targets:
        raise UsageError(f"no module name matches {list(target_patterns)}")
    freeze(model)
    for name in targets:
        sublayer = model.get_submodule(name)
        replace_module(model, name, WithAdapter(sublayer, _output_width(sublayer), bottleneck))
    if train_layer_norms:
        for name, module in model.named_modules():
            if "norm" in type(module).__name__.lower() or name.rsplit(".", 1)[-1].startswith("ln"):
                for param in module.parameters():
                    param.requires_grad_(True)
    return targets
