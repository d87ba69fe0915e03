"""Magnitude pruning: remove the weights (or whole units) that matter least.

A trained network has many weights close to zero. *Magnitude pruning* (Han et al., 2015,
"Learning both Weights and Connections for Efficient Neural Networks", NeurIPS) sets the
smallest-magnitude fraction of them to zero and, optionally, fine-tunes the rest for a while
so that they make up for what was removed. Two flavours:

- **Unstructured**: any single weight can go. Per matrix we keep the largest ``|w|`` (L1
  magnitude) and zero the rest. Accuracy survives high sparsity, but the matrix keeps its
  shape: a dense file is as large as before and a dense matmul is as slow, unless a sparse
  format or sparse kernel is used. :func:`l1_unstructured_mask` is our own mask; the tests
  check it selects exactly the weights that ``torch.nn.utils.prune.l1_unstructured`` does.
  ``torch.nn.utils.prune.custom_from_mask`` then holds the mask during fine-tuning
  (``weight = weight_orig * mask``), so pruned weights stay zero.
- **Structured**: whole units go -- attention heads (Michel et al., 2019, "Are Sixteen Heads
  Really Better than One?", NeurIPS) and feed-forward neurons -- ranked by the L2 norm of
  every weight the unit owns. The matrices really shrink, so the file and the latency drop.

A BERT layer's units and the weights they own::

    head h   : rows h*d:(h+1)*d of query, key, value (+ biases), same columns of attn output
    neuron j : row j of intermediate.dense (+ bias j), column j of output.dense

A unit whose weights are all zero contributes nothing (``GELU(0) = 0``; a head whose value
rows are zero outputs zeros), so removing it leaves the layer's outputs unchanged -- which
the tests check.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import prune


def l1_unstructured_mask(weight: Tensor, amount: float) -> Tensor:
    """A 0/1 mask shaped like ``weight`` that zeros its ``round(amount * numel)`` smallest ``|w|``.

    Ties between equal magnitudes are broken by position (a stable sort), so the mask is
    deterministic.
    """
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"amount must be in [0, 1], got {amount}")
    n_pruned = round(amount * weight.numel())
    mask = torch.ones(weight.numel(), dtype=weight.dtype, device=weight.device)
    smallest = weight.detach().abs().flatten().argsort(stable=True)[:n_pruned]
    mask[smallest] = 0.0
    return mask.view_as(weight)


def encoder_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The ``nn.Linear`` layers inside the Transformer layers (embeddings and head excluded)."""
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and ".encoder.layer." in f".{name}"
    ]


def prune_unstructured(model: nn.Module, amount: float) -> nn.Module:
    """Zero the smallest ``amount`` of each encoder weight matrix, in place (masks stay attached).

    The masks live as ``weight_mask`` buffers until :func:`make_permanent` folds them in, so
    that fine-tuning in between cannot bring pruned weights back.
    """
    for _, linear in encoder_linears(model):
        prune.custom_from_mask(linear, "weight", l1_unstructured_mask(linear.weight, amount))
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold every attached pruning mask into its weight (``prune.remove``), in place."""
    for _, linear in encoder_linears(model):
        if prune.is_pruned(linear):
            prune.remove(linear, "weight")
    return model


def sparsity(model: nn.Module) -> float:
    """Share of exactly-zero weights in the encoder's linear layers."""
    weights = [linear.weight for _, linear in encoder_linears(model)]
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / sum(w.numel() for w in weights)


# --------------------------------------------------------------------------------------------
# Structured pruning: shrink the matrices
# --------------------------------------------------------------------------------------------


def _keep_outputs(linear: nn.Linear, keep: Tensor) -> nn.Linear:
    """A new ``nn.Linear`` with only the output units (rows) in ``keep``."""
    smaller = nn.Linear(linear.in_features, len(keep), bias=linear.bias is not None)
    smaller.weight.data = linear.weight.data[keep].clone()  # (out', in)
    if linear.bias is not None:
        smaller.bias.data = linear.bias.data[keep].clone()
    return smaller


def _keep_inputs(linear: nn.Linear, keep: Tensor) -> nn.Linear:
    """A new ``nn.Linear`` reading only the input features (columns) in ``keep``."""
    smaller = nn.Linear(len(keep), linear.out_features, bias=linear.bias is not None)
    smaller.weight.data = linear.weight.data[:, keep].clone()  # (out, in')
    if linear.bias is not None:
        smaller.bias.data = linear.bias.data.clone()
    return smaller


def neuron_scores(layer: nn.Module) -> Tensor:
    """L2 norm of each feed-forward neuron's weights in a ``BertLayer``, shape ``(F,)``."""
    w_in = layer.intermediate.dense.weight  # (F, C)
    b_in = layer.intermediate.dense.bias  # (F,)
    w_out = layer.output.dense.weight  # (C, F)
    squared = w_in.pow(2).sum(1) + b_in.pow(2) + w_out.pow(2).sum(0)
    return squared.detach().sqrt()


def head_scores(attention: nn.Module) -> Tensor:
    """L2 norm of each head's weights in a ``BertAttention``, shape ``(H,)``."""
    self_attn = attention.self
    n_heads, head_dim = self_attn.num_attention_heads, self_attn.attention_head_size
    squared = torch.zeros(n_heads)
    for proj in (self_attn.query, self_attn.key, self_attn.value):
        rows = proj.weight.pow(2).sum(1) + proj.bias.pow(2)  # (H * d,)
        squared += rows.view(n_heads, head_dim).sum(1).detach()
    columns = attention.output.dense.weight.pow(2).sum(0)  # (H * d,)
    squared += columns.view(n_heads, head_dim).sum(1).detach()
    return squared.sqrt()


def _lowest(scores: Tensor, n_removed: int) -> Tensor:
    """Indices of the units to keep after removing the ``n_removed`` lowest scores (sorted)."""
    keep = scores.argsort(descending=True, stable=True)[: len(scores) - n_removed]
    return keep.sort().values


def remove_neurons(layer: nn.Module, n_removed: int) -> Tensor:
    """Remove the ``n_removed`` lowest-scoring feed-forward neurons of a ``BertLayer``.

    Returns the indices of the neurons kept.
    """
    keep = _lowest(neuron_scores(layer), n_removed)
    layer.intermediate.dense = _keep_outputs(layer.intermediate.dense, keep)
    layer.output.dense = _keep_inputs(layer.output.dense, keep)
    return keep


def remove_heads(attention: nn.Module, n_removed: int) -> Tensor:
    """Remove the ``n_removed`` lowest-scoring heads of a ``BertAttention`` (at least one stays).

    Returns the indices of the heads kept.
    """
    self_attn = attention.self
    n_heads, head_dim = self_attn.num_attention_heads, self_attn.attention_head_size
    if n_removed >= n_heads:
        raise ValueError(f"cannot remove {n_removed} of {n_heads} heads: one must stay")
    heads = _lowest(head_scores(attention), n_removed)
    keep = (heads[:, None] * head_dim + torch.arange(head_dim)).flatten()  # (H' * d,)
    for name in ("query", "key", "value"):
        setattr(self_attn, name, _keep_outputs(getattr(self_attn, name), keep))
    attention.output.dense = _keep_inputs(attention.output.dense, keep)
    self_attn.num_attention_heads = len(heads)
    self_attn.all_head_size = len(keep)
    return heads


def prune_structured(model: nn.Module, fraction: float) -> nn.Module:
    """Remove ``fraction`` of the heads and FFN neurons in every layer of a BERT, in place."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    for layer in model.base_model.encoder.layer:
        n_heads = layer.attention.self.num_attention_heads
        remove_heads(layer.attention, min(n_heads - 1, round(fraction * n_heads)))
        remove_neurons(layer, round(fraction * layer.intermediate.dense.out_features))
    return model
