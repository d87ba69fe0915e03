"""Attention: every position reads from every other position in one step.

Scaled dot-product attention (Vaswani et al., 2017, "Attention Is All You Need",
section 3.2) turns a sequence of vectors into a new sequence in which each
output is a weighted average of *values*; the weights say how well that
position's *query* matches each position's *key*:

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

Dividing by ``sqrt(d_k)`` keeps the dot products at unit scale, so the softmax
does not saturate as the head width grows. A *mask* removes keys a query may
not see: padding (keys that are not real tokens) or the future (a decoder's
*causal* mask, so that position ``t`` reads only positions ``<= t``).

Multi-head attention runs ``h`` attentions side by side on ``h`` learned
projections of width ``d_model / h`` and concatenates them, so different heads
can track different relations (syntax, coreference, position) at the cost of
one full-width attention.

Unlike a recurrent network, which needs ``n - 1`` sequential steps to carry
information from the first token to the last, attention connects any two
positions by a path of length one, and all positions are computed in parallel
(see ``weeks/week2_transformers/attention_demo.py`` for the measurement).

Mask convention, the same as :func:`torch.nn.functional.scaled_dot_product_attention`:
a boolean mask is ``True`` where a query **may** attend; a float mask is added
to the scores. :func:`padding_mask` and :func:`causal_mask` build boolean masks
that broadcast against scores of shape ``(B, heads, T_q, T_k)``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils import benchmark


def causal_mask(length: int, device: torch.device | None = None) -> torch.Tensor:
    """``(T, T)`` boolean mask, ``True`` on and below the diagonal (no peeking ahead)."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


def padding_mask(is_padding: torch.Tensor) -> torch.Tensor:
    """``(B, 1, 1, T_k)`` boolean mask from a ``(B, T_k)`` tensor that is ``True`` at padding."""
    return ~is_padding[:, None, None, :]


def combine_masks(*masks: torch.Tensor | None) -> torch.Tensor | None:
    """Logical AND of boolean masks (``None`` entries are skipped; all ``None`` gives ``None``)."""
    present = [mask for mask in masks if mask is not None]
    if not present:
        return None
    combined = present[0]
    for mask in present[1:]:
        combined = combined & mask
    return combined


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout: nn.Module | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(Q K^T / sqrt(d_k) [+ mask]) V`` and the attention weights.

    ``query`` is ``(..., T_q, d_k)``, ``key`` ``(..., T_k, d_k)``, ``value``
    ``(..., T_k, d_v)``; ``mask`` broadcasts to ``(..., T_q, T_k)``. Returns the
    output ``(..., T_q, d_v)`` and the weights ``(..., T_q, T_k)`` (each row sums
    to one). A query row whose keys are all masked has no defined average and
    comes out as NaN, as in PyTorch.
    """
    d_k = query.size(-1)
    scores = query @ key.transpose(-2, -1) / math.sqrt(d_k)  # (..., T_q, T_k)
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask
    weights = scores.softmax(dim=-1)  # (..., T_q, T_k)
    if dropout is not None:
        weights = dropout(weights)
    return weights @ value, weights  # (..., T_q, d_v), (..., T_q, T_k)


class MultiHeadAttention(nn.Module):
    """``h`` scaled dot-product attentions over learned projections, concatenated.

    ``MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W_O`` with
    ``head_i = Attention(Q W_Q_i, K W_K_i, V W_V_i)``. Inputs are batch-first:
    ``(B, T, d_model)``. After a forward pass the weights of every head are kept
    in ``last_weights`` ``(B, h, T_q, T_k)`` so that they can be plotted.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.query_proj = nn.Linear(d_model, d_model, bias=bias)
        self.key_proj = nn.Linear(d_model, d_model, bias=bias)
        self.value_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.last_weights: torch.Tensor | None = None

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, d_model) -> (B, h, T, d_head)``."""
        batch, length, _ = x.shape
        return x.view(batch, length, self.n_heads, self.d_head).transpose(1, 2)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, h, T, d_head) -> (B, T, d_model)``."""
        batch, _, length, _ = x.shape
        return x.transpose(1, 2).reshape(batch, length, self.d_model)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend from ``query`` ``(B, T_q, C)`` to ``key``/``value`` ``(B, T_k, C)``.

        ``mask`` broadcasts to ``(B, h, T_q, T_k)``: a ``(T_q, T_k)`` causal mask,
        a ``(B, 1, 1, T_k)`` padding mask, or both combined.
        """
        q = self.split_heads(self.query_proj(query))  # (B, h, T_q, d_head)
        k = self.split_heads(self.key_proj(key))  # (B, h, T_k, d_head)
        v = self.split_heads(self.value_proj(value))  # (B, h, T_k, d_head)
        heads, weights = scaled_dot_product_attention(q, k, v, mask, self.dropout)
        self.last_weights = weights.detach()  # (B, h, T_q, T_k)
        return self.out_proj(self.merge_heads(heads))  # (B, T_q, C)


def _copy_linear(target: nn.Linear, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    with torch.no_grad():
        target.weight.copy_(weight)
        if bias is not None:
            target.bias.copy_(bias)


def from_torch_multihead(reference: nn.MultiheadAttention) -> MultiHeadAttention:
    """Our layer with the weights of ``torch.nn.MultiheadAttention``.

    PyTorch stacks ``W_Q, W_K, W_V`` into one ``in_proj_weight`` ``(3C, C)`` so
    that a single matrix multiply computes all three projections.
    """
    ours = MultiHeadAttention(reference.embed_dim, reference.num_heads, reference.dropout)
    weights = reference.in_proj_weight.detach().chunk(3)
    biases = reference.in_proj_bias.detach().chunk(3)
    projections = (ours.query_proj, ours.key_proj, ours.value_proj)
    for projection, weight, bias in zip(projections, weights, biases, strict=True):
        _copy_linear(projection, weight, bias)
    _copy_linear(ours.out_proj, reference.out_proj.weight, reference.out_proj.bias)
    return ours


def from_bert_attention(reference: nn.Module, n_heads: int) -> MultiHeadAttention:
    """Our layer with the weights of a Hugging Face ``BertAttention`` block.

    BERT keeps separate ``query``, ``key``, ``value`` layers in ``reference.self``
    and the output projection in ``reference.output.dense`` (followed there by a
    residual connection and LayerNorm, which are not part of attention proper).
    """
    self_attention, out_dense = reference.self, reference.output.dense
    ours = MultiHeadAttention(out_dense.in_features, n_heads)
    _copy_linear(ours.query_proj, self_attention.query.weight, self_attention.query.bias)
    _copy_linear(ours.key_proj, self_attention.key.weight, self_attention.key.bias)
    _copy_linear(ours.value_proj, self_attention.value.weight, self_attention.value.bias)
    _copy_linear(ours.out_proj, out_dense.weight, out_dense.bias)
    return ours.eval()


# --- Why attention replaces recurrence ----------------------------------------------------


@dataclass
class RecurrenceVsAttention:
    """One sequence length of :func:`compare_with_recurrence` (see there for the columns)."""

    seq_len: int
    lstm_path_length: int
    attention_path_length: int
    lstm_ms: float
    attention_ms: float
    lstm_first_token_gradient: float
    attention_first_token_gradient: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def first_token_gradient(layer: nn.Module, length: int, width: int) -> float:
    """``||dy_last/dx_first|| / ||dy_last/dx_last||``: how much the first token reaches the last.

    Measured in float64 on one random sequence; 1 means the first token counts as
    much as the last one, values near 0 mean its signal has faded on the way.
    """
    x = torch.randn(1, length, width, dtype=torch.float64, requires_grad=True)  # (1, T, C)
    y = layer(x)  # (1, T, C)
    y[0, -1].sum().backward()
    return (x.grad[0, 0].norm() / x.grad[0, -1].norm()).item()


def _median_ms(layer: nn.Module, x: torch.Tensor, min_run_time: float) -> float:
    timer = benchmark.Timer(stmt="layer(x)", globals={"layer": layer, "x": x}, num_threads=1)
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def compare_with_recurrence(
    lengths: list[int],
    width: int,
    n_heads: int,
    batch: int,
    device: torch.device | str = "cpu",
    min_run_time: float = 0.2,
) -> list[RecurrenceVsAttention]:
    """An LSTM layer against a self-attention layer of the same width, per sequence length.

    - *path length*: layer applications between the first input and the last
      output. The LSTM passes information one step at a time (``T - 1``
      recurrent steps); attention connects every pair of positions directly (1).
    - *wall time*: median forward pass of a ``(batch, T, width)`` input
      (``torch.utils.benchmark``, one CPU thread). The LSTM's ``T`` steps must
      run one after another; attention is a few large matrix products,
      ``O(T^2 C)`` work but all of it parallel.
    - *first-token gradient*: :func:`first_token_gradient` at initialisation (on the CPU).
    """
    lstm = _LastLayerOutput(nn.LSTM(width, width, batch_first=True)).eval()
    attention = _SelfAttention(MultiHeadAttention(width, n_heads)).eval()
    rows = []
    for length in lengths:
        x = torch.randn(batch, length, width, device=device)  # (B, T, C)
        with torch.no_grad():
            lstm_ms = _median_ms(copy.deepcopy(lstm).to(device), x, min_run_time)
            attention_ms = _median_ms(copy.deepcopy(attention).to(device), x, min_run_time)
        rows.append(
            RecurrenceVsAttention(
                seq_len=length,
                lstm_path_length=length - 1,
                attention_path_length=1,
                lstm_ms=lstm_ms,
                attention_ms=attention_ms,
                lstm_first_token_gradient=first_token_gradient(
                    copy.deepcopy(lstm).double(), length, width
                ),
                attention_first_token_gradient=first_token_gradient(
                    copy.deepcopy(attention).double(), length, width
                ),
            )
        )
    return rows


class _LastLayerOutput(nn.Module):
    """``nn.LSTM`` returns ``(outputs, state)``; keep the outputs ``(B, T, C)``."""

    def __init__(self, lstm: nn.LSTM):
        super().__init__()
        self.lstm = lstm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lstm(x)[0]


class _SelfAttention(nn.Module):
    """Self-attention as a one-argument layer: queries, keys and values all come from ``x``."""

    def __init__(self, attention: MultiHeadAttention):
        super().__init__()
        self.attention = attention

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x, x, x)
