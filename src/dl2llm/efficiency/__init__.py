"""Training with less memory and time: mixed precision, gradient checkpointing, measurement.

- :mod:`dl2llm.efficiency.precision` -- fp32 vs bf16/fp16 autocast, loss scaling;
- :mod:`dl2llm.efficiency.checkpointing` -- recompute activations instead of storing them;
- :mod:`dl2llm.efficiency.memory` -- measured peak memory (CUDA allocator or process RSS).
"""

from __future__ import annotations

from dl2llm.efficiency.checkpointing import set_gradient_checkpointing
from dl2llm.efficiency.memory import PeakMemory
from dl2llm.efficiency.precision import (
    PrecisionRun,
    fp16_underflow,
    loss_agreement,
    train_with_precision,
)

__all__ = [
    "PeakMemory",
    "PrecisionRun",
    "fp16_underflow",
    "loss_agreement",
    "set_gradient_checkpointing",
    "train_with_precision",
]
