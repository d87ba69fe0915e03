"""Exercise ``scaled_dot_product_attention`` (week 2).

Mirrors :func:`dl2llm.attention.scaled_dot_product_attention`; the reference is
``torch.nn.functional.scaled_dot_product_attention``. Its attention weights come
from the same function with the identity matrix as values: ``softmax(...) @ I``.
"""

from __future__ import annotations

from dl2llm.exercises.framework import Case, Exercise

TEMPLATE = '''"""Exercise scaled_dot_product_attention (Vaswani et al., 2017, section 3.2.1).

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + mask) V

Check with: dl2llm exercise check scaled_dot_product_attention
"""

import torch


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The attention output and the attention weights.

    query: (..., T_q, d_k); key: (..., T_k, d_k); value: (..., T_k, d_v).
    mask broadcasts to (..., T_q, T_k): a bool mask keeps the positions that are True
    (the others get -inf before the softmax); a float mask is added to the scores.
    Returns output (..., T_q, d_v) and weights (..., T_q, T_k), each row summing to one.
    """
    # scores = ...                 # (..., T_q, T_k)
    # weights = softmax over T_k   # (..., T_q, T_k)
    # output = weights @ value     # (..., T_q, d_v)
    raise NotImplementedError
'''


def _library():
    from types import SimpleNamespace

    from dl2llm.attention import scaled_dot_product_attention

    return SimpleNamespace(scaled_dot_product_attention=scaled_dot_product_attention)


def _inputs(shape_q, shape_k, d_v, seed, scale=1.0):
    import torch

    generator = torch.Generator().manual_seed(seed)
    query = torch.randn(*shape_q, generator=generator, dtype=torch.float64) * scale
    key = torch.randn(*shape_k, generator=generator, dtype=torch.float64) * scale
    value = torch.randn(*shape_k[:-1], d_v, generator=generator, dtype=torch.float64)
    return query, key, value


def _reference(query, key, value, mask):
    import torch
    import torch.nn.functional as F

    identity = torch.eye(key.size(-2), dtype=key.dtype).expand(*key.shape[:-1], key.size(-2))
    output = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
    weights = F.scaled_dot_product_attention(query, key, identity, attn_mask=mask)
    return output, weights


def _cases() -> list[Case]:
    import torch

    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    padding = torch.tensor([[True] * 7, [True] * 4 + [False] * 3]).view(2, 1, 1, 7)
    additive = torch.randn(5, 5, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    settings = {
        "(2, 5, 8) self-attention, no mask": (_inputs((2, 5, 8), (2, 5, 8), 8, 1), None),
        "(2, 3, 4, 8) queries over (2, 3, 6, 8) keys, d_v=5 (heads, T_q != T_k)": (
            _inputs((2, 3, 4, 8), (2, 3, 6, 8), 5, 2),
            None,
        ),
        "(1, 6, 4) with a bool causal mask (6, 6)": (_inputs((1, 6, 4), (1, 6, 4), 4, 3), causal),
        "(2, 2, 3, 8) over 7 keys with a (2, 1, 1, 7) padding mask": (
            _inputs((2, 2, 3, 8), (2, 2, 7, 8), 8, 4),
            padding,
        ),
        "(3, 5, 4) with an additive float mask": (_inputs((3, 5, 4), (3, 5, 4), 4, 5), additive),
        "(2, 4, 16) with large scores (|q|, |k| ~ 30): softmax must not overflow": (
            _inputs((2, 4, 16), (2, 4, 16), 3, 6, scale=30.0),
            None,
        ),
    }
    return [
        Case(
            f"{name} vs F.scaled_dot_product_attention",
            lambda code, qkv=qkv, mask=mask: code.scaled_dot_product_attention(*qkv, mask=mask),
            lambda qkv=qkv, mask=mask: _reference(*qkv, mask),
            atol=1e-10,
            rtol=1e-8,
        )
        for name, (qkv, mask) in settings.items()
    ]


EXERCISE = Exercise(
    name="scaled_dot_product_attention",
    title="Scaled dot-product attention",
    week=2,
    mirrors=("dl2llm.attention.scaled_dot_product_attention",),
    template=TEMPLATE,
    cases=_cases,
    library=_library,
)
