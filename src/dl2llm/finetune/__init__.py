"""Parameter-efficient fine-tuning written from scratch: LoRA, Houlsby adapters, prefix-tuning.

Each method freezes the pretrained model and trains a small number of new
parameters (see :func:`trainable_share`):

- :mod:`dl2llm.finetune.lora` -- low-rank updates of chosen weight matrices (Hu et al., 2021);
- :mod:`dl2llm.finetune.adapters` -- bottleneck layers after each sublayer (Houlsby et al., 2019);
- :mod:`dl2llm.finetune.prefix` -- learned key/value prefixes in every layer (Li & Liang, 2021).
"""

from __future__ import annotations

from torch import nn

from dl2llm.finetune.adapters import inject_adapters
from dl2llm.finetune.lora import (
    LoRAEmbedding,
    LoRALinear,
    inject_lora,
    load_lora,
    lora_state_dict,
    merge_lora,
    save_lora,
    unload_lora,
    unmerge_lora,
)
from dl2llm.finetune.prefix import PrefixTuning


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (shared tensors counted once)."""
    unique = {id(p): p for p in model.parameters()}.values()
    return sum(p.numel() for p in unique if p.requires_grad), sum(p.numel() for p in unique)


def trainable_share(model: nn.Module) -> float:
    """Fraction of the model's parameters that receive gradients."""
    trainable, total = count_parameters(model)
    return trainable / total


__all__ = [
    "LoRAEmbedding",
    "LoRALinear",
    "PrefixTuning",
    "count_parameters",
    "inject_adapters",
    "inject_lora",
    "load_lora",
    "lora_state_dict",
    "merge_lora",
    "save_lora",
    "trainable_share",
    "unload_lora",
    "unmerge_lora",
]
