"""Exercise ``multi_head_attention`` (week 2).

Mirrors :class:`dl2llm.attention.MultiHeadAttention`; the reference is
``torch.nn.MultiheadAttention`` (batch-first) with the same projection weights.
"""

from __future__ import annotations

from types import SimpleNamespace

from dl2llm.exercises.framework import Case, Exercise

TEMPLATE = '''"""Exercise multi_head_attention (Vaswani et al., 2017, section 3.2.2).

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W_O,
    head_i = Attention(Q W_Q_i, K W_K_i, V W_V_i)

The h heads are computed at once: project to d_model, split d_model into h heads
of d_head = d_model / h, attend, merge the heads back. Check with:
dl2llm exercise check multi_head_attention
"""

import math

import torch
from torch import nn


class MultiHeadAttention(nn.Module):
    """Multi-head attention over batch-first inputs ``(B, T, d_model)``."""

    def __init__(self, d_model: int, n_heads: int, bias: bool = True):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.query_proj = nn.Linear(d_model, d_model, bias=bias)
        self.key_proj = nn.Linear(d_model, d_model, bias=bias)
        self.value_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, d_model) -> (B, h, T, d_head)."""
        raise NotImplementedError

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, h, T, d_head) -> (B, T, d_model)."""
        raise NotImplementedError

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend from query (B, T_q, d_model) to key/value (B, T_k, d_model).

        mask is a bool tensor that broadcasts to (B, h, T_q, T_k): True = may attend
        (a (T_q, T_k) causal mask, or a (B, 1, 1, T_k) padding mask).
        Returns (B, T_q, d_model).
        """
        # q, k, v = split_heads(projections)    # (B, h, T, d_head)
        # scores = q @ k^T / sqrt(d_head)        # (B, h, T_q, T_k), -inf where mask is False
        # heads = softmax(scores) @ v            # (B, h, T_q, d_head)
        # return out_proj(merge_heads(heads))    # (B, T_q, d_model)
        raise NotImplementedError
'''


def _library() -> SimpleNamespace:
    from dl2llm.attention import MultiHeadAttention

    return SimpleNamespace(MultiHeadAttention=MultiHeadAttention)


def _reference_module(d_model: int, n_heads: int, seed: int):
    import torch

    torch.manual_seed(seed)
    reference = torch.nn.MultiheadAttention(d_model, n_heads, batch_first=True)
    reference = reference.double()
    with torch.no_grad():
        reference.in_proj_bias.normal_()  # torch starts the biases at zero: make them count
        reference.out_proj.bias.normal_()
    return reference.eval()


def _copy_weights(module, reference) -> None:
    import torch

    weights = reference.in_proj_weight.chunk(3)
    biases = reference.in_proj_bias.chunk(3)
    projections = (module.query_proj, module.key_proj, module.value_proj)
    with torch.no_grad():
        for projection, weight, bias in zip(projections, weights, biases, strict=True):
            projection.weight.copy_(weight)
            projection.bias.copy_(bias)
        module.out_proj.weight.copy_(reference.out_proj.weight)
        module.out_proj.bias.copy_(reference.out_proj.bias)


def _inputs(batch: int, t_q: int, t_k: int, d_model: int, seed: int):
    import torch

    generator = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, t_q, d_model, generator=generator, dtype=torch.float64)
    key = torch.randn(batch, t_k, d_model, generator=generator, dtype=torch.float64)
    return query, key


def _ours(code, d_model, n_heads, seed, query, key, mask):
    import torch

    module = code.MultiHeadAttention(d_model, n_heads).double().eval()
    _copy_weights(module, _reference_module(d_model, n_heads, seed))
    with torch.no_grad():
        return module(query, key, key, mask=mask)


def _theirs(d_model, n_heads, seed, query, key, attn_mask, key_padding_mask):
    import torch

    reference = _reference_module(d_model, n_heads, seed)
    with torch.no_grad():
        output, _ = reference(
            query, key, key, attn_mask=attn_mask, key_padding_mask=key_padding_mask
        )
    return output


def _cases() -> list[Case]:
    import torch

    causal = torch.ones(5, 5, dtype=torch.bool).tril()  # True = may attend
    is_padding = torch.tensor([[False] * 7, [False] * 4 + [True] * 3])  # (B, T_k)
    x, _ = _inputs(2, 5, 5, 16, 1)
    q, k = _inputs(2, 3, 7, 16, 2)
    single, _ = _inputs(3, 4, 4, 8, 3)
    settings = {
        "self-attention (2, 5, 16), 4 heads": (16, 4, x, x, None, None, None),
        "cross-attention 3 queries over 7 keys, 2 heads": (16, 2, q, k, None, None, None),
        "causal self-attention (5, 5) mask, 4 heads": (16, 4, x, x, causal, ~causal, None),
        "padding mask (2, 1, 1, 7): the second sequence has 3 pad keys": (
            16,
            4,
            q,
            k,
            ~is_padding.view(2, 1, 1, 7),
            None,
            is_padding,
        ),
        "one head (3, 4, 8)": (8, 1, single, single, None, None, None),
    }
    return [
        Case(
            f"{name} vs torch.nn.MultiheadAttention",
            lambda code, s=setting, i=i: _ours(code, s[0], s[1], i, s[2], s[3], s[4]),
            lambda s=setting, i=i: _theirs(s[0], s[1], i, s[2], s[3], s[5], s[6]),
            atol=1e-10,
            rtol=1e-8,
        )
        for i, (name, setting) in enumerate(settings.items())
    ]


EXERCISE = Exercise(
    name="multi_head_attention",
    title="Multi-head attention",
    week=2,
    mirrors=("dl2llm.attention.MultiHeadAttention",),
    template=TEMPLATE,
    cases=_cases,
    library=_library,
)
