"""Prefix-tuning: learned key/value vectors that every layer attends to (Li & Liang, 2021).

"Prefix-Tuning: Optimizing Continuous Prompts for Generation" (ACL 2021,
arXiv:2101.00190) keeps the whole language model frozen and learns, for every
layer, ``P`` extra key and value vectors: a "virtual prompt" of ``P`` positions
that the real tokens can attend to but that is not made of words. The model's
attention in layer ``l`` becomes

    softmax(q [K_prefix_l ; K_l]^T / sqrt(d)) [V_prefix_l ; V_l]

so a prefix steers every layer's computation, not only the input embeddings.
Trainable parameters: ``P * n_layers * 2 * d_kv``. The paper found direct
optimisation of the prefix unstable and *reparameterises* it during training:
a smaller embedding ``E`` (``P x hidden``) goes through an MLP,
``prefix = MLP(E)`` (``hidden`` selects that). After training only the MLP's
output is needed, so :meth:`PrefixTuning.fold` computes it once, stores it as
the plain prefix and drops ``E`` and the MLP: the folded model computes the
same outputs with ``P * n_layers * 2 * d_kv`` stored numbers.

Hugging Face models accept precomputed keys/values as a cache, so the prefix
goes in exactly where a generation cache would: the real tokens then sit at
positions ``P, P+1, ...``. That gives the guarantee the tests check: a prefix
initialised from the activations of real tokens (the paper's "initialise with
real words") makes a decoder compute exactly what the frozen model computes
on those tokens followed by the input. Encoders (BERT) take the same cache: the
prefix is attended to in both directions, and position ids start after it, as
they do in ``peft``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import DynamicCache

from dl2llm.finetune.lora import freeze
from dl2llm.runtime import UsageError


class PrefixTuning(nn.Module):
    """A frozen Hugging Face model (any head) with a trainable per-layer key/value prefix."""

    def __init__(self, model: nn.Module, n_prefix: int = 10, hidden: int | None = None) -> None:
        super().__init__()
        if n_prefix <= 0:
            raise UsageError(f"prefix length must be positive, got {n_prefix}")
        config = model.config
        self.model = model
        self.n_prefix, self.n_layers = n_prefix, config.num_hidden_layers
        self.n_kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        self.head_dim = getattr(config, "head_dim", None) or (
            config.hidden_size // config.num_attention_heads
        )
        width = self.n_layers * 2 * self.n_kv_heads * self.head_dim
        freeze(model)
        if hidden is None:
            self.prefix = nn.Parameter(0.02 * torch.randn(n_prefix, width))
            self.mlp = None
        else:
            self.prefix = nn.Parameter(0.02 * torch.randn(n_prefix, hidden))
            self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, width))

    def prefix_keys_values(self) -> torch.Tensor:
        """All prefix keys and values, shaped ``(layers, 2, heads, P, head_dim)``."""
        flat = self.prefix if self.mlp is None else self.mlp(self.prefix)  # (P, L*2*H*D)
        kv = flat.view(self.n_prefix, self.n_layers, 2, self.n_kv_heads, self.head_dim)
        return kv.permute(1, 2, 3, 0, 4)  # (L, 2, H, P, D)

    def prefix_cache(self, batch_size: int) -> DynamicCache:
        """A fresh cache holding the prefix for a batch (the model appends to it)."""
        kv = self.prefix_keys_values()
        layers = [
            (keys.expand(batch_size, -1, -1, -1), values.expand(batch_size, -1, -1, -1))
            for keys, values in kv  # each (H, P, D) -> (B, H, P, D)
        ]
        return DynamicCache(layers, config=self.model.config)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ):
        batch, length = input_ids.shape  # (B, T)
        if attention_mask is None:
            attention_mask = torch.ones(batch, length, dtype=torch.long, device=input_ids.device)
        prefix_mask = attention_mask.new_ones(batch, self.n_prefix)
        return self.model(
            input_ids=input_ids,
            attention_mask=torch.cat([prefix_mask, attention_mask], dim=1),  # (B, P + T)
            cache=self.prefix_cache(batch),
            **kwargs,
        )

    @torch.no_grad()
    def fold(self) -> None:
        """Replace the reparameterisation by its output: a plain prefix, same outputs."""
        if self.mlp is not None:
            flat = self.mlp(self.prefix)  # (P, L*2*H*D)
            self.prefix = nn.Parameter(flat.detach().clone())
            self.mlp = None

    @torch.no_grad()
    def init_from_tokens(self, token_ids: torch.Tensor) -> None:
        """Set the prefix to the frozen model's keys/values for ``P`` real tokens."""
        if self.mlp is not None:
            raise UsageError("init_from_tokens needs a direct prefix (hidden=None)")
        if token_ids.shape != (self.n_prefix,):
            raise UsageError(f"need {self.n_prefix} token ids, got shape {tuple(token_ids.shape)}")
        cache = self.model(input_ids=token_ids[None], use_cache=True).past_key_values
        kv = torch.stack([torch.stack([layer.keys[0], layer.values[0]]) for layer in cache.layers])
        flat = kv.permute(3, 0, 1, 2, 4).reshape(self.n_prefix, -1)  # (P, L*2*H*D)
        self.prefix.copy_(flat)
