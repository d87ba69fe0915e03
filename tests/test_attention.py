"""dl2llm.attention equals PyTorch's attention (atol 1e-6), masks included."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dl2llm.attention import (
    MultiHeadAttention,
    causal_mask,
    combine_masks,
    from_torch_multihead,
    padding_mask,
    scaled_dot_product_attention,
)

ATOL = 1e-6


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def qkv(batch=2, heads=3, t_q=5, t_k=7, d=8):
    return (
        torch.randn(batch, heads, t_q, d),
        torch.randn(batch, heads, t_k, d),
        torch.randn(batch, heads, t_k, d),
    )


def test_unmasked_matches_torch_and_rows_sum_to_one():
    q, k, v = qkv()
    out, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=ATOL, rtol=0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5), atol=ATOL, rtol=0)


def test_causal_mask_matches_torch_is_causal():
    q, k, v = qkv(t_q=6, t_k=6)
    out, weights = scaled_dot_product_attention(q, k, v, causal_mask(6))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    assert torch.all(weights.triu(diagonal=1) == 0)


def test_padding_mask_matches_torch_and_ignores_padded_values():
    q, k, v = qkv(t_k=7)
    is_pad = torch.tensor([[False] * 4 + [True] * 3, [False] * 7])
    mask = padding_mask(is_pad)  # (B, 1, 1, T_k)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    assert torch.all(weights[0, :, :, 4:] == 0)
    v_changed = v.clone()
    v_changed[0, :, 4:] = 1e3  # what sits under the padding cannot matter
    out_changed, _ = scaled_dot_product_attention(q, k, v_changed, mask)
    torch.testing.assert_close(out_changed, out, atol=ATOL, rtol=0)


def test_float_mask_is_added_to_scores():
    q, k, v = qkv()
    bias = torch.randn(5, 7)
    out, _ = scaled_dot_product_attention(q, k, v, bias)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)


def test_combined_causal_and_padding_mask():
    q, k, v = qkv(t_q=6, t_k=6)
    is_pad = torch.tensor([[False] * 4 + [True] * 2, [False] * 6])
    mask = combine_masks(causal_mask(6), padding_mask(is_pad), None)
    assert mask.shape == (2, 1, 6, 6)
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    assert combine_masks(None, None) is None


def mha_pair(d_model=16, n_heads=4):
    theirs = torch.nn.MultiheadAttention(d_model, n_heads, batch_first=True).eval()
    return from_torch_multihead(theirs).eval(), theirs


def test_multi_head_self_attention_matches_torch():
    ours, theirs = mha_pair()
    x = torch.randn(3, 9, 16)
    expected, expected_weights = theirs(x, x, x, average_attn_weights=False)
    torch.testing.assert_close(ours(x, x, x), expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.last_weights, expected_weights, atol=ATOL, rtol=0)


def test_multi_head_cross_attention_with_padding_matches_torch():
    ours, theirs = mha_pair()
    queries, memory = torch.randn(2, 4, 16), torch.randn(2, 6, 16)
    is_pad = torch.tensor([[False] * 6, [False] * 3 + [True] * 3])
    expected, _ = theirs(queries, memory, memory, key_padding_mask=is_pad)
    got = ours(queries, memory, memory, padding_mask(is_pad))
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


def test_multi_head_causal_and_padding_matches_torch():
    ours, theirs = mha_pair()
    x = torch.randn(2, 6, 16)
    is_pad = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    # torch's attn_mask is True where attention is *not* allowed: the opposite convention
    expected, _ = theirs(x, x, x, attn_mask=~causal_mask(6), key_padding_mask=is_pad)
    got = ours(x, x, x, combine_masks(causal_mask(6), padding_mask(is_pad)))
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


def test_heads_must_divide_width():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
