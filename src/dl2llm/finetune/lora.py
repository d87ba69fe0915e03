"""LoRA: low-rank adaptation of a frozen weight matrix (Hu et al., 2021, arXiv:2106.09685).

Fine-tuning changes a pretrained weight ``W`` (``d_out x d_in``) by some ``dW``.
LoRA's bet is that ``dW`` has low "intrinsic rank", so it learns it as a product
of two thin matrices and leaves ``W`` frozen:

    h = W x + (alpha / r) * B A dropout(x)      A: (r, d_in), B: (d_out, r), r << d_in

``A`` starts random and ``B`` starts at zero, so at initialisation the adapted
layer computes exactly what the pretrained one did. Only ``A`` and ``B`` train:
``r * (d_in + d_out)`` numbers per matrix instead of ``d_in * d_out``. After
training, ``B A`` can be *merged* into ``W`` (``W + (alpha / r) B A``), so the
deployed model has no extra layers and no extra latency; *unmerging* subtracts
it again. The saved adapter is just the ``A`` and ``B`` matrices (kilobytes to a
few megabytes), not the model.

This module wraps ``torch.nn.Linear``, GPT-2's ``Conv1D`` (a linear layer
whose weight is stored transposed, ``d_in x d_out``) and ``nn.Embedding`` (a
linear map of one-hot tokens), injects wrappers by module name, and saves and
loads only the adapter weights. ``peft`` is the reference it
is tested against (same outputs and gradients to 1e-6).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn
from transformers.pytorch_utils import Conv1D

from dl2llm.io import atomic_write_bytes
from dl2llm.runtime import UsageError

LORA_KEYS = ("lora_A", "lora_B")


class LoRALayer(nn.Module):
    """A frozen base layer plus a trainable ``(alpha / r) B A``; merging and unmerging."""

    base: nn.Module
    lora_A: nn.Parameter
    lora_B: nn.Parameter

    def __init__(self, base: nn.Module, r: int, alpha: float) -> None:
        super().__init__()
        if r <= 0:
            raise UsageError(f"LoRA rank r must be positive, got {r}")
        self.base = base
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        self.merged = False
        for param in self.base.parameters():
            param.requires_grad_(False)

    def delta_weight(self) -> torch.Tensor:
        """``(alpha / r) B A`` in the base layer's own weight layout."""
        raise NotImplementedError

    @torch.no_grad()
    def merge(self) -> None:
        """Fold ``B A`` into the base weight: same outputs, no extra matmuls."""
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract ``B A`` from the base weight again (undo :meth:`merge`)."""
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, merged={self.merged}"


class LoRALinear(LoRALayer):
    """A frozen ``nn.Linear`` or ``Conv1D`` plus a trainable low-rank update ``B A``."""

    def __init__(self, base: nn.Module, r: int, alpha: float, dropout: float = 0.0) -> None:
        if not isinstance(base, nn.Linear | Conv1D):
            raise UsageError(f"LoRA wraps nn.Linear or Conv1D, not {type(base).__name__}")
        super().__init__(base, r, alpha)
        self.transposed = isinstance(base, Conv1D)  # Conv1D stores W as (d_in, d_out)
        if self.transposed:
            d_in, d_out = base.nx, base.nf
        else:
            d_in, d_out = base.in_features, base.out_features
        weight = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, d_in, dtype=weight.dtype, device=weight.device))
        self.lora_B = nn.Parameter(torch.zeros(d_out, r, dtype=weight.dtype, device=weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear (and peft) do
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def delta_weight(self) -> torch.Tensor:
        delta = self.scaling * (self.lora_B @ self.lora_A)  # (d_out, d_in)
        return delta.T if self.transposed else delta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)  # (..., d_out)
        if self.merged:
            return out
        low_rank = self.dropout(x) @ self.lora_A.T  # (..., r)
        return out + self.scaling * (low_rank @ self.lora_B.T)  # (..., d_out)


class LoRAEmbedding(LoRALayer):
    """A frozen ``nn.Embedding`` plus a trainable low-rank update of its table.

    An embedding table ``E`` (``vocab x d``) is a linear map applied to one-hot
    token vectors, so the same update applies with ``A: (r, vocab)`` and
    ``B: (d, r)``, and looking up column ``A[:, token]`` replaces the product
    with a one-hot vector. As in the LoRA reference code (and peft), ``A``
    starts at zero and ``B`` random, the reverse of :class:`LoRALinear`. It
    costs ``r * (vocab + d)`` parameters. Merging into a table that is tied to
    an output layer (GPT-2's language-model head) changes that layer too.
    """

    def __init__(self, base: nn.Embedding, r: int, alpha: float) -> None:
        if not isinstance(base, nn.Embedding):
            raise UsageError(f"LoRAEmbedding wraps nn.Embedding, not {type(base).__name__}")
        super().__init__(base, r, alpha)
        weight = base.weight
        vocab, d = weight.shape
        self.lora_A = nn.Parameter(torch.zeros(r, vocab, dtype=weight.dtype, device=weight.device))
        self.lora_B = nn.Parameter(torch.randn(d, r, dtype=weight.dtype, device=weight.device))
        self.dropout = nn.Identity()  # no dropout on token ids

    def delta_weight(self) -> torch.Tensor:
        return (self.scaling * (self.lora_B @ self.lora_A)).T  # (vocab, d)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out = self.base(ids)  # (..., d)
        if self.merged:
            return out
        low_rank = nn.functional.embedding(ids, self.lora_A.T)  # (..., r)
        return out + self.scaling * (low_rank @ self.lora_B.T)  # (..., d)


def matches(name: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """Whether a module name ends with one of ``patterns`` (each a regex over dotted names).

    ``"q_proj"`` matches ``model.layers.0.self_attn.q_proj``; ``r"h\\.0\\.attn\\.c_attn"``
    matches only the first block's attention projection.
    """
    return any(re.search(rf"(^|\.)(?:{pattern})$", name) for pattern in patterns)


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where the submodule called ``name`` (dotted path) was."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def freeze(model: nn.Module) -> None:
    """Stop gradients for every parameter of ``model``."""
    for param in model.parameters():
        param.requires_grad_(False)


def freeze_all_but_lora(model: nn.Module) -> None:
    """Stop gradients for every parameter except LoRA's ``A`` and ``B``."""
    for name, param in model.named_parameters():
        param.requires_grad_(name.rsplit(".", 1)[-1] in LORA_KEYS)


def inject_lora(
    model: nn.Module,
    target_patterns: list[str] | tuple[str, ...],
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
) -> list[str]:
    """Freeze ``model`` and wrap every matching Linear/Conv1D/Embedding in a LoRA layer.

    Linear and Conv1D layers get a :class:`LoRALinear`, embeddings a
    :class:`LoRAEmbedding`. LoRA layers injected before stay trainable, so
    calling it twice gives different ranks to different modules. Returns the
    names of the wrapped modules. Raises ``UsageError`` when no module matches
    (a typo in a pattern would otherwise train nothing).
    """
    targets = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear | Conv1D | nn.Embedding) and matches(name, target_patterns)
    ]
    if not targets:
        raise UsageError(f"no Linear/Conv1D/Embedding module name matches {list(target_patterns)}")
    freeze_all_but_lora(model)
    for name in targets:
        base = model.get_submodule(name)
        if isinstance(base, nn.Embedding):
            layer = LoRAEmbedding(base, r, alpha)
        else:
            layer = LoRALinear(base, r, alpha, dropout)
        replace_module(model, name, layer)
    return targets


def lora_layers(model: nn.Module) -> dict[str, LoRALayer]:
    """Every LoRA layer (:class:`LoRALinear`, :class:`LoRAEmbedding`) in ``model`` by name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALayer)}


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter weights (``...lora_A`` / ``...lora_B``), detached copies."""
    return {
        key: value.detach().clone()
        for key, value in model.state_dict().items()
        if key.rsplit(".", 1)[-1] in LORA_KEYS
    }


def merge_lora(model: nn.Module) -> int:
    """Merge every LoRA layer into its base weight; returns how many were merged."""
    layers = lora_layers(model)
    for layer in layers.values():
        layer.merge()
    return len(layers)


def unmerge_lora(model: nn.Module) -> int:
    """Undo :func:`merge_lora`; returns how many layers were unmerged."""
    layers = lora_layers(model)
    for layer in layers.values():
        layer.unmerge()
    return len(layers)


def unload_lora(model: nn.Module) -> nn.Module:
    """Replace each wrapper by its base layer (merged weights stay merged).

    ``merge_lora(model); unload_lora(model)`` gives a plain model of the
    original architecture, ready for ``save_pretrained`` or ONNX export.
    """
    for name, layer in lora_layers(model).items():
        replace_module(model, name, layer.base)
    return model


def _lora_config(model: nn.Module) -> dict[str, object]:
    layers = lora_layers(model)
    if not layers:
        raise UsageError("the model has no LoRA layers to save (call inject_lora first)")
    first = next(iter(layers.values()))
    return {
        "targets": sorted(layers),
        "r": first.r,
        "alpha": first.alpha,
        "dropout": getattr(first.dropout, "p", 0.0),
        "ranks": {name: [layer.r, layer.alpha] for name, layer in layers.items()},
    }


def save_lora(model: nn.Module, path: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Write only the adapter weights (and the LoRA settings) as one safetensors file.

    ``dtype`` (say ``torch.float16``) halves a committed file; loading casts back.
    """
    metadata = {"dl2llm_lora": json.dumps(_lora_config(model))}
    tensors = {k: v.to(dtype or v.dtype).contiguous() for k, v in lora_state_dict(model).items()}
    return atomic_write_bytes(path, save_safetensors(tensors, metadata=metadata))


def load_lora(model: nn.Module, path: str | Path) -> nn.Module:
    """Load an adapter saved by :func:`save_lora` into ``model``.

    A model without LoRA layers gets them injected first with the saved
    settings; the file's tensors must then match the model's adapter exactly.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"LoRA adapter file not found: {path}")
    with safe_open(path, "pt") as handle:
        config = json.loads((handle.metadata() or {}).get("dl2llm_lora", "null"))
    if config is None:
        raise UsageError(f"{path} is not a dl2llm LoRA adapter (no LoRA settings inside)")
    tensors = load_safetensors(path.read_bytes())
    if not lora_layers(model):
        ranks = config.get("ranks") or {
            t: [config["r"], config["alpha"]] for t in config["targets"]
        }
        for r, alpha in sorted({tuple(setting) for setting in ranks.values()}):
            exact = [
                re.escape(name) for name, setting in ranks.items() if tuple(setting) == (r, alpha)
            ]
            inject_lora(model, exact, r, alpha, config["dropout"])
    expected = set(lora_state_dict(model))
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise UsageError(
            f"adapter {path} does not fit this model: missing {missing[:3]}, extra {extra[:3]}"
        )
    model.load_state_dict(tensors, strict=False)
    return model
