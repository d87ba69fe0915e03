"""Gradient checkpointing: trade compute for memory (Chen et al., 2016, arXiv:1604.06174).

Backpropagation needs every layer's activations from the forward pass, so
training memory grows with depth x batch x sequence length. "Training Deep Nets
with Sublinear Memory Cost" stores only the input of each block (a
*checkpoint*) and recomputes the block's inner activations during the backward
pass: activation memory drops from one block's worth per layer to roughly one
block's worth in total, for the price of a second forward pass through every
block (about a third more compute).

PyTorch implements the recomputation (``torch.utils.checkpoint``) and Hugging
Face models wire it into every Transformer block; we switch it on and measure
what it saves (see ``weeks/week4_optimization/mixed_precision_training.py``).
The gradients are the same as without checkpointing, which the tests check.
"""

from __future__ import annotations

from transformers import PreTrainedModel


def set_gradient_checkpointing(model: PreTrainedModel, enabled: bool) -> None:
    """Recompute each Transformer block in the backward pass (or stop doing so)."""
    if not hasattr(model, "activation_checkpointing_enable"):  # older transformers names
        if enabled:
            model.gradient_checkpointing_enable({"use_reentrant": False})
        else:
            model.gradient_checkpointing_disable()
    elif enabled:
        model.activation_checkpointing_enable({"use_reentrant": False})
    else:
        model.activation_checkpointing_disable()
    model.config.use_cache = not enabled  # a key/value cache is pointless while training
