"""GPT-2 from scratch: a decoder-only Transformer language model, sampling, and HF conversion.

GPT-2 (Radford et al., 2019, "Language Models are Unsupervised Multitask Learners") is the
decoder half of the Transformer (Vaswani et al., 2017, "Attention Is All You Need"): token and
learned position embeddings, then ``n_layer`` identical blocks, then a final LayerNorm and a
linear map back to the vocabulary. Each block is *pre-norm* (LayerNorm before each sub-layer,
a residual connection around it)::

    x = x + attention(layer_norm_1(x))    # tokens look at earlier tokens
    x = x + mlp(layer_norm_2(x))          # each token is transformed on its own

Causal self-attention lets position ``t`` read positions ``<= t`` only, so one forward pass
over ``T`` tokens trains ``T`` next-token predictions at once. The output layer shares its
weight matrix with the token embedding (*weight tying*, Press & Wolf, 2017), which saves
``vocab_size * n_embd`` parameters -- most of a small model.

Generation appends one token at a time. Without a cache every step re-runs the model over the
whole sequence; the *KV cache* keeps each layer's keys and values of the tokens already seen,
so a step only processes the newest token. Sampling is shaped by temperature, top-k (Fan et
al., 2018) and nucleus/top-p (Holtzman et al., 2020) filtering.

The module also converts to and from Hugging Face ``GPT2LMHeadModel`` checkpoints
(:meth:`GPT.from_hf`, :meth:`GPT.to_hf`), which makes "same logits as Hugging Face" testable.
As nanoGPT's ``model.py``, it needs only torch and the standard library (``transformers`` is
imported inside the conversion methods). Training the model lives in :mod:`dl2llm.pretrain`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dl2llm.errors import UsageError

GPT2_VOCAB_SIZE = 50257
GPT2_EOT_ID = GPT2_VOCAB_SIZE - 1  # <|endoftext|>, GPT-2's last id


@dataclass(frozen=True)
class GPTConfig:
    """The shape of a GPT-2 model (the defaults are GPT-2 small, 124M parameters)."""

    vocab_size: int = GPT2_VOCAB_SIZE
    context_length: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head != 0:
            raise UsageError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            raise UsageError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def to_hf(self):
        """The equivalent ``transformers.GPT2Config``."""
        from transformers import GPT2Config

        eot = GPT2_EOT_ID if self.vocab_size > GPT2_EOT_ID else None
        return GPT2Config(
            vocab_size=self.vocab_size,
            n_positions=self.context_length,
            n_embd=self.n_embd,
            n_layer=self.n_layer,
            n_head=self.n_head,
            resid_pdrop=self.dropout,
            embd_pdrop=self.dropout,
            attn_pdrop=self.dropout,
            layer_norm_epsilon=self.layer_norm_eps,
            activation_function="gelu_new",
            bos_token_id=eot,
            eos_token_id=eot,
            tie_word_embeddings=True,
        )

    @classmethod
    def from_hf(cls, hf_config) -> GPTConfig:
        """Read a ``GPT2Config``; refuses variants this module does not implement."""
        unsupported = {
            "activation_function": hf_config.activation_function
            not in ("gelu_new", "gelu_pytorch_tanh"),
            "n_inner": hf_config.n_inner not in (None, 4 * hf_config.n_embd),
            "scale_attn_weights": not hf_config.scale_attn_weights,
            "scale_attn_by_inverse_layer_idx": hf_config.scale_attn_by_inverse_layer_idx,
            "tie_word_embeddings": not hf_config.tie_word_embeddings,
        }
        bad = [name for name, is_bad in unsupported.items() if is_bad]
        if bad:
            raise UsageError(f"unsupported GPT2Config setting(s) for dl2llm.gpt: {', '.join(bad)}")
        return cls(
            vocab_size=hf_config.vocab_size,
            context_length=hf_config.n_positions,
            n_layer=hf_config.n_layer,
            n_head=hf_config.n_head,
            n_embd=hf_config.n_embd,
            dropout=hf_config.resid_pdrop,
            layer_norm_eps=hf_config.layer_norm_epsilon,
        )


class KVCache:
    """Keys and values of every layer for the tokens processed so far.

    The buffers are allocated once for the whole context; each forward pass writes its new
    keys/values at ``[length, length + T)`` and attends over ``[0, length + T)``.
    """

    def __init__(
        self, config: GPTConfig, batch_size: int, device: torch.device, dtype: torch.dtype
    ):
        shape = (config.n_layer, batch_size, config.n_head, config.context_length, config.head_dim)
        self.keys = torch.empty(shape, device=device, dtype=dtype)  # (L, B, H, T_max, D)
        self.values = torch.empty(shape, device=device, dtype=dtype)
        self.length = 0

    def update(self, layer: int, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Store the new ``(B, H, T, D)`` keys/values; return all of them so far."""
        end = self.length + keys.size(2)
        self.keys[layer, :, :, self.length : end] = keys
        self.values[layer, :, :, self.length : end] = values
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]


class CausalSelfAttention(nn.Module):
    """Multi-head attention in which each position sees itself and earlier positions only."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.dropout = config.n_head, config.dropout
        self.qkv_proj = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.out_proj = nn.Linear(config.n_embd, config.n_embd)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv_proj(x).split(C, dim=2)  # 3 x (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        past = 0  # tokens already in the cache, before these T
        if cache is not None:
            past = cache.length
            k, v = cache.update(layer, k, v)  # (B, H, past + T, D)
        y = attend(q, k, v, past, self.dropout if self.training else 0.0)  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        return self.resid_dropout(self.out_proj(y))


def attend(q: Tensor, k: Tensor, v: Tensor, past: int, dropout: float = 0.0) -> Tensor:
    """Causal scaled dot-product attention of ``T`` queries over ``past + T`` keys.

    Written out, this is ``softmax(q @ k.T / sqrt(D) + mask) @ v`` where ``mask`` is
    ``-inf`` wherever key position > query position (query ``i`` sits at ``past + i``).
    ``F.scaled_dot_product_attention`` computes exactly that with fused kernels.
    """
    T, S = q.size(-2), k.size(-2)
    if past == 0:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
    if T == 1:  # one new token (cached generation) sees every key: no mask needed
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
    visible = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(diagonal=past)  # (T, S)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=visible, dropout_p=dropout)


class MLP(nn.Module):
    """Position-wise feed-forward network: widen 4x, GELU, project back."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.up_proj = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.down_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        hidden = F.gelu(self.up_proj(x), approximate="tanh")  # (B, T, 4C), GPT-2's "gelu_new"
        return self.dropout(self.down_proj(hidden))  # (B, T, C)


class Block(nn.Module):
    """One pre-norm Transformer decoder block."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.attn_norm = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.attn = CausalSelfAttention(config)
        self.mlp_norm = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        x = x + self.attn(self.attn_norm(x), cache, layer)  # (B, T, C)
        return x + self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    """The GPT-2 language model: ``forward(ids)`` gives next-token logits ``(B, T, vocab)``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.n_embd)
        self.position_embedding = nn.Embedding(config.context_length, config.n_embd)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.final_norm = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.token_embedding.weight  # weight tying
        self.apply(self._init_weights)
        residual_std = 0.02 / math.sqrt(2 * config.n_layer)  # GPT-2: scale the residual writes
        for block in self.blocks:
            nn.init.normal_(block.attn.out_proj.weight, std=residual_std)
            nn.init.normal_(block.mlp.down_proj.weight, std=residual_std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def features(self, input_ids: Tensor, cache: KVCache | None = None) -> Tensor:
        """Final hidden states ``(B, T, C)`` of ``input_ids`` ``(B, T)``."""
        past = cache.length if cache is not None else 0
        T = input_ids.size(1)
        if past + T > self.config.context_length:
            raise UsageError(
                f"sequence of {past + T} tokens is longer than the model's context of "
                f"{self.config.context_length} tokens"
            )
        positions = torch.arange(past, past + T, device=input_ids.device)  # (T,)
        x = self.token_embedding(input_ids) + self.position_embedding(positions)  # (B, T, C)
        x = self.embedding_dropout(x)
        for layer, block in enumerate(self.blocks):
            x = block(x, cache, layer)
        if cache is not None:
            cache.length += T
        return self.final_norm(x)

    def forward(self, input_ids: Tensor, cache: KVCache | None = None) -> Tensor:
        return self.lm_head(self.features(input_ids, cache))  # (B, T, vocab)

    @torch.no_grad()
    def generate(
        self,
        input_ids: Tensor,
        max_new_tokens: int,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        use_cache: bool = True,
        stop_token: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Continue ``input_ids`` ``(B, T)`` by up to ``max_new_tokens``; returns ``(B, T + n)``.

        ``temperature=0`` is greedy decoding. Rows that produced ``stop_token`` are padded with
        it, and generation ends once every row has. Call ``model.eval()`` first (dropout).
        """
        check_sampling(temperature, top_k, top_p)
        total = input_ids.size(1) + max_new_tokens
        if total > self.config.context_length:
            raise UsageError(
                f"prompt ({input_ids.size(1)} tokens) + max_new_tokens ({max_new_tokens}) = "
                f"{total} is longer than the model's context of {self.config.context_length} tokens"
            )
        cache = None
        if use_cache:
            weight = self.lm_head.weight
            cache = KVCache(self.config, len(input_ids), weight.device, weight.dtype)
        tokens, step_input = input_ids, input_ids
        finished = torch.zeros(len(input_ids), 1, dtype=torch.bool, device=input_ids.device)
        for _ in range(max_new_tokens):
            hidden = self.features(step_input if use_cache else tokens, cache)  # (B, T, C)
            logits = self.lm_head(hidden[:, -1])  # (B, vocab): only the last position matters
            next_token = sample_next_token(logits, temperature, top_k, top_p, generator)  # (B, 1)
            if stop_token is not None:
                next_token = next_token.masked_fill(finished, stop_token)
                finished |= next_token == stop_token
            tokens = torch.cat([tokens, next_token], dim=1)
            step_input = next_token
            if finished.all():
                break
        return tokens

    @classmethod
    def from_hf(cls, path: str | Path) -> GPT:
        """Load a Hugging Face ``GPT2LMHeadModel`` checkpoint (a folder, or a hub name online)."""
        from transformers import GPT2LMHeadModel

        return cls.from_hf_model(GPT2LMHeadModel.from_pretrained(str(path), dtype=torch.float32))

    @classmethod
    def from_hf_model(cls, hf_model) -> GPT:
        """Copy the weights of an in-memory ``GPT2LMHeadModel`` (returned in eval mode)."""
        model = cls(GPTConfig.from_hf(hf_model.config))
        hf_weights = hf_model.state_dict()
        ours = {name: _swap_layout(name, hf_weights[hf_name]) for name, hf_name in _names(model)}
        _load_all_but_head(model, ours)
        return model.eval()

    def to_hf_model(self):
        """An in-memory ``GPT2LMHeadModel`` with the same weights."""
        from transformers import GPT2LMHeadModel

        hf_model = GPT2LMHeadModel(self.config.to_hf())
        weights = self.state_dict()
        theirs = {hf_name: _swap_layout(name, weights[name]) for name, hf_name in _names(self)}
        _load_all_but_head(hf_model, theirs)
        return hf_model.eval()

    def to_hf(self, path: str | Path) -> Path:
        """Save as a Hugging Face checkpoint folder (``config.json`` + ``model.safetensors``)."""
        path = Path(path)
        self.to_hf_model().save_pretrained(path)
        return path


# Our parameter names and Hugging Face GPT2LMHeadModel's ("{i}" is the block index).
_HF_NAMES = {
    "token_embedding.weight": "transformer.wte.weight",
    "position_embedding.weight": "transformer.wpe.weight",
    "final_norm.weight": "transformer.ln_f.weight",
    "final_norm.bias": "transformer.ln_f.bias",
}
_HF_BLOCK_NAMES = {
    "attn_norm": "ln_1",
    "attn.qkv_proj": "attn.c_attn",
    "attn.out_proj": "attn.c_proj",
    "mlp_norm": "ln_2",
    "mlp.up_proj": "mlp.c_fc",
    "mlp.down_proj": "mlp.c_proj",
}
# Hugging Face keeps GPT-2's original Conv1D layers, whose weight is (in, out): the transpose
# of nn.Linear's (out, in).
_CONV1D_WEIGHT = re.compile(r"blocks\.\d+\.(attn|mlp)\.\w+_proj\.weight")


def _names(model: GPT) -> list[tuple[str, str]]:
    """``(our name, Hugging Face name)`` for every stored tensor except the tied head."""
    pairs = list(_HF_NAMES.items())
    for i in range(model.config.n_layer):
        for ours, theirs in _HF_BLOCK_NAMES.items():
            for kind in ("weight", "bias"):
                pairs.append((f"blocks.{i}.{ours}.{kind}", f"transformer.h.{i}.{theirs}.{kind}"))
    return pairs


def _load_all_but_head(model: nn.Module, weights: dict[str, Tensor]) -> None:
    """``load_state_dict`` that allows only the tied ``lm_head.weight`` to be absent."""
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing != ["lm_head.weight"] or unexpected:
        raise RuntimeError(f"weight names do not match: missing {missing}, unexpected {unexpected}")


def _swap_layout(name: str, tensor: Tensor) -> Tensor:
    """Transpose the Conv1D/Linear weights (either way: a transpose is its own inverse)."""
    return tensor.t().contiguous() if _CONV1D_WEIGHT.fullmatch(name) else tensor


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise :class:`UsageError` for sampling settings that make no sense."""
    if temperature < 0:
        raise UsageError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise UsageError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise UsageError(f"top_p must be in (0, 1], got {top_p}")


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the ``k`` largest logits of each row ``(B, V)``; the rest become ``-inf``."""
    kth_largest = torch.topk(logits, min(k, logits.size(-1))).values[:, -1:]  # (B, 1)
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Keep the smallest set of most likely tokens whose probability adds up to ``p``."""
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # probability of the more likely tokens
    drop_sorted = mass_before >= p  # the top token always stays (its mass_before is 0)
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def sample_next_token(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Pick one token per row of ``logits`` ``(B, V)``; returns ``(B, 1)``."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)
