"""Parameter-efficient fine-tuning written from scratch: LoRA, Houlsby adapters, prefix-tuning.

Each method freezes the pretrained model and trains a small number of new
parameters (see :func:`trainable_share`):

- :mod:`dl2llm.finetune.lora` -- low-rank updates of chosen weight matrices (Hu et al., 2021);
- :mod:`dl2llm.finetune.adapters` -- bottleneck layers after each sublayer (Houlsby et al., 2019);
- :mod:`dl2llm.finetune.prefix` -- learned key/value prefixes in every layer (Li & Liang, 2021).

The experiments that use them: :mod:`dl2llm.finetune.experiment` (week 4's comparison on
MiniLM, a pretrained BERT) and :mod:`dl2llm.finetune.grounded_qa` (the capstone's LoRA on
SmolLM2, one process or DDP).
"""

from __future__ import annotations

from typing import NamedTuple

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


class ParameterCount(NamedTuple):
    trainable: int
    total: int


def count_parameters(model: nn.Module) -> ParameterCount:
    """``(trainable, total)`` parameter counts; a tied weight (GPT-2's head) is counted once.

    The project's one parameter counter: pruning, distillation and the GPT lessons use it too.
    """
    unique = {id(p): p for p in model.parameters()}.values()
    trainable = sum(p.numel() for p in unique if p.requires_grad)
    return ParameterCount(trainable, sum(p.numel() for p in unique))


def trainable_share(model: nn.Module) -> float:
    """Fraction of the model's parameters that receive gradients."""
    trainable, total = count_parameters(model)
    return trainable / total


__all__ = [
    "LoRAEmbedding",
    "LoRALinear",
    "ParameterCount",
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
