"""Exercise ``gpt_block``: a causal pre-norm GPT-2 decoder block (week 2).

Mirrors :class:`dl2llm.gpt.Block` (with :class:`~dl2llm.gpt.CausalSelfAttention`
and :class:`~dl2llm.gpt.MLP`). The learner's blocks replace those of a small
GPT-2 whose weights come from a Hugging Face ``GPT2LMHeadModel``; the logits
must match that model's.
"""

from __future__ import annotations

from functools import cache
from types import SimpleNamespace

from dl2llm.exercises.framework import Case, Exercise

TEMPLATE = '''"""Exercise gpt_block: one GPT-2 decoder block (Radford et al., 2019).

    x = x + attn(ln_1(x))     # causal multi-head self-attention
    x = x + mlp(ln_2(x))      # Linear(C, 4C) -> GELU (tanh approximation) -> Linear(4C, C)

Causal: position t attends to positions 0..t only. The layers are created for
you (their names must stay, the checker loads GPT-2 weights into them).
Check with: dl2llm exercise check gpt_block
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position sees itself and earlier ones."""

    def __init__(self, config):
        super().__init__()
        self.n_head = config.n_head
        self.qkv_proj = nn.Linear(config.n_embd, 3 * config.n_embd)  # q, k, v side by side
        self.out_proj = nn.Linear(config.n_embd, config.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C)."""
        # q, k, v = self.qkv_proj(x).split(C, dim=2)    # 3 x (B, T, C)
        # -> (B, n_head, T, C // n_head) each; scores (B, n_head, T, T), -inf above the diagonal
        raise NotImplementedError


class MLP(nn.Module):
    """Position-wise feed-forward network: widen 4x, GELU, project back."""

    def __init__(self, config):
        super().__init__()
        self.up_proj = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.down_proj = nn.Linear(4 * config.n_embd, config.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C); GPT-2 uses F.gelu(..., approximate="tanh")."""
        raise NotImplementedError


class Block(nn.Module):
    """One pre-norm Transformer decoder block."""

    def __init__(self, config):
        super().__init__()
        self.attn_norm = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.attn = CausalSelfAttention(config)
        self.mlp_norm = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C), with the two residual connections."""
        raise NotImplementedError
'''


def _library() -> SimpleNamespace:
    from dl2llm.gpt import Block

    return SimpleNamespace(Block=Block)


@cache
def _models():
    """A small GPT-2 from Hugging Face and the same weights in :class:`dl2llm.gpt.GPT`."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from dl2llm.gpt import GPT

    config = GPT2Config(
        vocab_size=64,
        n_positions=16,
        n_embd=32,
        n_layer=2,
        n_head=4,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        activation_function="gelu_new",
        bos_token_id=None,
        eos_token_id=None,
    )
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    reference = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, param in reference.named_parameters():
            if name.endswith("bias"):  # GPT-2 starts biases at zero: make them count
                param.normal_(std=0.02)
    return reference, GPT.from_hf_model(reference)


def _learner_logits(code, ids):
    import torch

    _, ours = _models()
    blocks = []
    for library_block in ours.blocks:
        block = code.Block(ours.config)
        block.load_state_dict(library_block.state_dict())
        blocks.append(block.eval())
    with torch.no_grad():
        positions = torch.arange(ids.size(1))  # (T,)
        x = ours.token_embedding(ids) + ours.position_embedding(positions)  # (B, T, C)
        for block in blocks:
            x = block(x)
        return ours.lm_head(ours.final_norm(x))  # (B, T, vocab)


def _reference_logits(ids):
    import torch

    reference, _ = _models()
    with torch.no_grad():
        return reference(ids).logits


def _ids(batch: int, length: int, seed: int):
    import torch

    return torch.randint(0, 64, (batch, length), generator=torch.Generator().manual_seed(seed))


def _cases() -> list[Case]:
    settings = {
        "2 sequences of 8 tokens": _ids(2, 8, 1),
        "one token": _ids(1, 1, 2),
        "the full 16-token context": _ids(3, 16, 3),
    }
    cases = [
        Case(
            f"{name}: logits of a 2-block GPT-2 vs transformers GPT2LMHeadModel",
            lambda code, ids=ids: _learner_logits(code, ids),
            lambda ids=ids: _reference_logits(ids),
            atol=1e-5,
            rtol=1e-4,
        )
        for name, ids in settings.items()
    ]
    original = _ids(2, 10, 4)
    changed = original.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 64
    cases.append(
        Case(
            "causality: changing the last token leaves the logits of earlier positions alone",
            lambda code: _learner_logits(code, changed)[:, :-1],
            lambda: _reference_logits(original)[:, :-1],
            atol=1e-5,
            rtol=1e-4,
        )
    )
    return cases


EXERCISE = Exercise(
    name="gpt_block",
    title="A causal GPT block",
    week=2,
    mirrors=("dl2llm.gpt.Block", "dl2llm.gpt.CausalSelfAttention", "dl2llm.gpt.MLP"),
    template=TEMPLATE,
    cases=_cases,
    library=_library,
)
