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
- **Structured**: whole units go -- attention heads and feed-forward neurons -- ranked by
  the L2 norm of every weight the unit owns. The matrices really shrink, so the file and
  the latency drop.

After pruning, *recovery fine-tuning* (:func:`recover`) trains the remaining weights on the
task again, masks held in place, and keeps the epoch that does best on validation.

A weight norm says how large a head is, not how much the loss needs it. Michel et al. (2019,
"Are Sixteen Heads Really Better than One?", NeurIPS) gate every head's output with a
variable ``xi_h = 1`` and score the head by the expected size of the loss's gradient with
respect to its gate, ``I_h = E_x |dL(x) / d xi_h|`` -- a first-order estimate of how much
the loss changes when the head is masked -- normalised by the L2 norm of the scores in
each layer (:func:`head_importance`). :func:`prune_heads` removes the least important heads
over the whole model by either ranking.

A BERT layer's units and the weights they own::

    head h   : rows h*d:(h+1)*d of query, key, value (+ biases), same columns of attn output
    neuron j : row j of intermediate.dense (+ bias j), column j of output.dense

A unit whose weights are all zero contributes nothing (``GELU(0) = 0``; a head whose value
rows are zero outputs zeros), so removing it leaves the layer's outputs unchanged -- which
the tests check.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import prune

from dl2llm import classification as clf
from dl2llm.data import LabelledTexts


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
    n_heads = attention.self.num_attention_heads
    if n_removed >= n_heads:
        raise ValueError(f"cannot remove {n_removed} of {n_heads} heads: one must stay")
    return keep_heads(attention, _lowest(head_scores(attention), n_removed))


def keep_heads(attention: nn.Module, heads: Tensor) -> Tensor:
    """Keep only the (sorted) ``heads`` of a ``BertAttention``, remove the others; return them."""
    self_attn = attention.self
    head_dim = self_attn.attention_head_size
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


# --------------------------------------------------------------------------------------------
# Recovery fine-tuning and head importance (Michel et al., 2019)
# --------------------------------------------------------------------------------------------


def recover(
    model: nn.Module,
    tokenizer,
    train: LabelledTexts,
    val: LabelledTexts,
    config: clf.FineTuneConfig,
    seed: int = 0,
) -> clf.FineTuneResult:
    """Recovery fine-tuning of a pruned classifier, in place; keeps the best validation epoch.

    Attached masks (:func:`prune_unstructured`) multiply the weights at every forward pass,
    so pruned weights get no gradient through the product and stay zero; removed units are
    gone from the matrices. Call :func:`make_permanent` afterwards to fold the masks in.
    """
    return clf.fine_tune(model, tokenizer, train, val, config, seed=seed, log=lambda _: None)


def labelled_batches(
    tokenizer, data: LabelledTexts, batch_size: int = 32, max_length: int = 64
) -> Iterator[dict[str, Tensor]]:
    """Tokenized batches: ``input_ids``, ``attention_mask`` ``(B, T)``, ``labels`` ``(B,)``."""
    for start in range(0, len(data), batch_size):
        batch = dict(
            tokenizer(
                data.texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
        )
        yield {
            "input_ids": batch["input_ids"],
            "attention_mask": batch["attention_mask"],
            "labels": torch.tensor(data.labels[start : start + batch_size]),
        }


def _gate_heads(model: nn.Module, gates: Tensor) -> list:
    """Multiply each head's attention output by ``gates[layer, example, head]``; returns hooks."""
    handles = []
    for layer, gate in zip(model.base_model.encoder.layer, gates, strict=True):
        n_heads = layer.attention.self.num_attention_heads
        head_dim = layer.attention.self.attention_head_size

        def scale(module, args, gate=gate, n_heads=n_heads, head_dim=head_dim):
            (context,) = args  # (B, T, H * d): the heads' outputs, side by side
            b, t, _ = context.shape
            gated = context.view(b, t, n_heads, head_dim) * gate[:, None, :, None]
            return (gated.view(b, t, n_heads * head_dim),)

        handles.append(layer.attention.output.dense.register_forward_pre_hook(scale))
    return handles


def head_importance(model: nn.Module, batches: Iterable[dict[str, Tensor]]) -> Tensor:
    """Michel et al.'s head importance ``E_x |dL(x) / d xi_h|``, shape ``(L, H)``.

    Every head's output is multiplied by a gate ``xi = 1`` of its own per example, so the
    gradient of the summed loss with respect to gate ``(l, b, h)`` is example ``b``'s own
    ``dL / d xi_h``; its absolute value is averaged over the examples. Scores are divided
    by their L2 norm within each layer, as in the paper. Dropout is off (eval mode).
    """
    layers = model.base_model.encoder.layer
    n_heads = layers[0].attention.self.num_attention_heads
    total, n_examples = torch.zeros(len(layers), n_heads), 0
    was_training = model.training
    model.eval()
    for batch in batches:
        size = batch["input_ids"].shape[0]
        gates = torch.ones(len(layers), size, n_heads, requires_grad=True)  # (L, B, H)
        handles = _gate_heads(model, gates)
        try:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            loss = F.cross_entropy(logits.logits, batch["labels"], reduction="sum")
            (grad,) = torch.autograd.grad(loss, gates)  # (L, B, H)
        finally:
            for handle in handles:
                handle.remove()
        total += grad.abs().sum(1)
        n_examples += size
    model.train(was_training)
    return normalise_per_layer(total / max(n_examples, 1))


def normalise_per_layer(scores: Tensor) -> Tensor:
    """Divide each layer's row of ``(L, H)`` scores by its L2 norm."""
    return scores / scores.norm(dim=1, keepdim=True).clamp_min(1e-12)


def head_norms(model: nn.Module) -> Tensor:
    """Weight-norm score of each head (:func:`head_scores`), ``(L, H)``, normalised per layer."""
    layers = model.base_model.encoder.layer
    return normalise_per_layer(torch.stack([head_scores(layer.attention) for layer in layers]))


def heads_to_remove(importance: Tensor, n_removed: int) -> list[list[int]]:
    """Per layer, the heads among the ``n_removed`` least important of ``(L, H)`` scores.

    The ranking is global (over every layer), as in Michel et al.; each layer keeps at least
    one head.
    """
    n_layers, n_heads = importance.shape
    if not 0 <= n_removed <= n_layers * (n_heads - 1):
        raise ValueError(f"can remove 0 to {n_layers * (n_heads - 1)} heads, not {n_removed}")
    removed: list[list[int]] = [[] for _ in range(n_layers)]
    for flat in importance.flatten().argsort(stable=True).tolist():
        if sum(map(len, removed)) == n_removed:
            break
        layer, head = divmod(flat, n_heads)
        if len(removed[layer]) < n_heads - 1:
            removed[layer].append(head)
    return [sorted(heads) for heads in removed]


def prune_heads(model: nn.Module, importance: Tensor, n_removed: int) -> list[list[int]]:
    """Remove the ``n_removed`` least important heads of a BERT, in place; return them per layer."""
    removed = heads_to_remove(importance, n_removed)
    for layer, gone in zip(model.base_model.encoder.layer, removed, strict=True):
        n_heads = layer.attention.self.num_attention_heads
        keep_heads(layer.attention, torch.tensor([h for h in range(n_heads) if h not in gone]))
    return removed
