"""The encoder-decoder Transformer, built from the parts in :mod:`dl2llm.attention`.

Vaswani et al. (2017), "Attention Is All You Need", replaced recurrence in
sequence-to-sequence models with attention alone:

- the **encoder** reads the whole source at once: ``N`` layers of self-attention
  plus a position-wise feed-forward network, each wrapped in a residual
  connection and layer normalisation;
- the **decoder** writes the target one token at a time: masked (causal)
  self-attention over what it has written so far, then *cross-attention* from
  those positions to the encoder's output ("memory"), then a feed-forward
  network;
- attention ignores order, so **sinusoidal positional encodings** (section 3.5)
  are added to the token embeddings: ``PE[pos, 2i] = sin(pos / 10000^(2i/d))``,
  ``PE[pos, 2i+1] = cos(pos / 10000^(2i/d))``.

Training uses **label smoothing** (section 5.4: the target distribution puts
``1 - eps`` on the right token and spreads ``eps`` over the vocabulary, which
hurts perplexity but helps accuracy) and the **Noam learning-rate schedule**
(section 5.3: linear warm-up, then decay with the inverse square root of the
step). Decoding is **greedy** (take the most likely token each step) or **beam
search** (keep the ``k`` most likely partial outputs; Wu et al., 2016, for the
length penalty).

One change from the paper: layer normalisation is applied *before* each
sub-layer ("pre-norm", Xiong et al., 2020), as in
``torch.nn.Transformer(norm_first=True)`` and GPT-2; it trains without a long
warm-up. The layers have the same structure as PyTorch's, and the tests check
that they compute the same function with copied weights.

The toy tasks it learns (copy, reverse, date-format conversion) are in
:mod:`dl2llm.seq2seq_tasks`: small enough to train on a laptop CPU in seconds to minutes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from dl2llm.attention import MultiHeadAttention, causal_mask, combine_masks, padding_mask
from dl2llm.io import atomic_save_torch
from dl2llm.runtime import UsageError

PAD, BOS, EOS = 0, 1, 2
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")


# --- Model ------------------------------------------------------------------------------


def sinusoidal_table(max_len: int, d_model: int) -> torch.Tensor:
    """``(max_len, d_model)`` positional encodings: sines on even, cosines on odd columns."""
    position = torch.arange(max_len, dtype=torch.float32)[:, None]  # (L, 1)
    frequency = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
    )  # (d/2,)
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table


class Embeddings(nn.Module):
    """Token embedding times ``sqrt(d_model)`` plus the sinusoidal position, then dropout."""

    def __init__(self, vocab_size: int, d_model: int, max_len: int, dropout: float):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, d_model)
        self.register_buffer("positions", sinusoidal_table(max_len, d_model), persistent=False)
        self.scale = math.sqrt(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` token ids -> ``(B, T, C)`` vectors."""
        length, max_len = ids.size(1), self.positions.size(0)
        if length > max_len:
            raise UsageError(
                f"sequence of {length} tokens is longer than the model's positional table "
                f"({max_len}); shorten it or build the model with a larger max_len"
            )
        vocab_size = self.tokens.num_embeddings
        if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
            raise UsageError(
                f"token ids must lie in [0, {vocab_size}), got {ids.min()}..{ids.max()}"
            )
        return self.dropout(self.tokens(ids) * self.scale + self.positions[:length])


class FeedForward(nn.Module):
    """``FFN(x) = max(0, x W_1 + b_1) W_2 + b_2``, applied to each position separately."""

    def __init__(self, d_model: int, d_ff: int, dropout: float):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(F.relu(self.linear1(x))))  # (B, T, C)


class EncoderLayer(nn.Module):
    """Self-attention then feed-forward, each as ``x + Dropout(Sublayer(LayerNorm(x)))``."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, src_mask: torch.Tensor | None) -> torch.Tensor:
        h = self.norm1(x)  # (B, S, C)
        x = x + self.dropout(self.self_attn(h, h, h, src_mask))
        return x + self.dropout(self.feed_forward(self.norm2(x)))  # (B, S, C)


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention to the memory, feed-forward (all pre-norm)."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        tgt_mask: torch.Tensor | None,
        src_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        h = self.norm1(x)  # (B, T, C)
        x = x + self.dropout(self.self_attn(h, h, h, tgt_mask))
        h = self.norm2(x)
        x = x + self.dropout(self.cross_attn(h, memory, memory, src_mask))  # reads (B, S, C)
        return x + self.dropout(self.feed_forward(self.norm3(x)))  # (B, T, C)


class Transformer(nn.Module):
    """Encoder-decoder Transformer; ``forward(src, tgt_in)`` returns next-token logits.

    ``src`` ``(B, S)`` and ``tgt_in`` ``(B, T)`` are token ids padded with
    :data:`PAD`; ``tgt_in`` starts with :data:`BOS`. Sequences longer than
    ``max_len`` raise :class:`~dl2llm.runtime.UsageError`.
    """

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        d_model: int = 128,
        n_heads: int = 4,
        n_layers: int = 2,
        d_ff: int = 512,
        dropout: float = 0.1,
        max_len: int = 64,
    ):
        super().__init__()
        self.max_len = max_len
        self.src_embed = Embeddings(src_vocab, d_model, max_len, dropout)
        self.tgt_embed = Embeddings(tgt_vocab, d_model, max_len, dropout)
        self.encoder_layers = nn.ModuleList(
            EncoderLayer(d_model, n_heads, d_ff, dropout) for _ in range(n_layers)
        )
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(d_model, n_heads, d_ff, dropout) for _ in range(n_layers)
        )
        self.encoder_norm, self.decoder_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.generator = nn.Linear(d_model, tgt_vocab)
        self._init_weights()

    def _init_weights(self) -> None:
        """Xavier-uniform for every matrix, as in the Annotated Transformer."""
        for parameter in self.parameters():
            if parameter.dim() > 1:
                nn.init.xavier_uniform_(parameter)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, S)`` ids -> memory ``(B, S, C)`` and the source padding mask ``(B, 1, 1, S)``."""
        src_mask = padding_mask(src == PAD)
        x = self.src_embed(src)  # (B, S, C)
        for layer in self.encoder_layers:
            x = layer(x, src_mask)
        return self.encoder_norm(x), src_mask

    def decode(
        self, tgt_in: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor
    ) -> torch.Tensor:
        """``(B, T)`` target prefix -> logits ``(B, T, V)`` for the token after each position."""
        tgt_mask = combine_masks(
            causal_mask(tgt_in.size(1), tgt_in.device), padding_mask(tgt_in == PAD)
        )  # (B, 1, T, T)
        x = self.tgt_embed(tgt_in)  # (B, T, C)
        for layer in self.decoder_layers:
            x = layer(x, memory, tgt_mask, src_mask)
        return self.generator(self.decoder_norm(x))  # (B, T, V)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, src_mask = self.encode(src)
        return self.decode(tgt_in, memory, src_mask)  # (B, T, V)

    def cross_attention(self) -> torch.Tensor:
        """Cross-attention weights of the last forward pass: ``(layers, B, h, T, S)``."""
        return torch.stack([layer.cross_attn.last_weights for layer in self.decoder_layers])


# --- Training ---------------------------------------------------------------------------


def label_smoothed_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, smoothing: float, ignore_index: int = PAD
) -> torch.Tensor:
    """Cross-entropy against ``(1 - eps) * one_hot(target) + eps / V``, averaged over tokens.

    ``logits`` ``(..., V)``, ``target`` ``(...)``; positions equal to
    ``ignore_index`` do not count. This is the smoothed target that
    ``F.cross_entropy(label_smoothing=eps)`` uses: the loss is
    ``(1 - eps) * NLL(target) + eps * mean_v(-log p_v)``.
    """
    if not 0.0 <= smoothing < 1.0:
        raise UsageError(f"label smoothing must be in [0, 1), got {smoothing}")
    log_probs = logits.log_softmax(dim=-1)  # (..., V)
    nll = -log_probs.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (...)
    uniform = -log_probs.mean(dim=-1)  # (...)
    per_token = (1.0 - smoothing) * nll + smoothing * uniform
    keep = target != ignore_index
    return per_token[keep].sum() / keep.sum().clamp(min=1)


def noam_rate(step: int, d_model: int, warmup: int, factor: float = 1.0) -> float:
    """``factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)`` (step 0 counts as 1)."""
    step = max(step, 1)
    return factor * d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)


def noam_scheduler(
    optimizer: torch.optim.Optimizer, d_model: int, warmup: int, factor: float = 1.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Noam schedule as a ``LambdaLR``; give the optimizer ``lr=1`` so the rate is the factor.

    The ``n``-th call to ``optimizer.step()`` (counting from 1) uses ``noam_rate(n)``.
    """
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda index: noam_rate(index + 1, d_model, warmup, factor)
    )


@dataclass
class Batch:
    """Source ``(B, S)``, decoder input ``<s> y`` ``(B, T)`` and target ``y </s>`` ``(B, T)``."""

    src: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor


def make_batch(pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> Batch:
    """Pad ``(source ids, target ids)`` pairs into a :class:`Batch`."""
    sources = [torch.tensor(src) for src, _ in pairs]
    targets = [torch.tensor(tgt) for _, tgt in pairs]
    src = nn.utils.rnn.pad_sequence(sources, batch_first=True, padding_value=PAD)
    tgt_in = nn.utils.rnn.pad_sequence(
        [F.pad(t, (1, 0), value=BOS) for t in targets], batch_first=True, padding_value=PAD
    )
    tgt_out = nn.utils.rnn.pad_sequence(
        [F.pad(t, (0, 1), value=EOS) for t in targets], batch_first=True, padding_value=PAD
    )
    return Batch(src, tgt_in, tgt_out)


def train_seq2seq(
    model: Transformer,
    batch_for_step: Callable[[int], Batch],
    steps: int,
    *,
    d_model: int,
    warmup: int,
    factor: float = 1.0,
    smoothing: float = 0.1,
    checkpoint: Path | None = None,
    checkpoint_every: int = 200,
    progress: bool = True,
) -> list[float]:
    """Train with Adam (betas 0.9/0.98, as in the paper), the Noam schedule and label smoothing.

    ``batch_for_step(step)`` must return the same batch for the same step, so a
    run resumed from ``checkpoint`` (saved atomically every ``checkpoint_every``
    steps) sees exactly the batches it would have seen. Returns the loss of every step.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    scheduler = noam_scheduler(optimizer, d_model, warmup, factor)
    start, losses = 0, []
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, losses = state["step"], state["losses"]
    model.train()
    for step in tqdm(range(start, steps), initial=start, total=steps, disable=not progress):
        batch = batch_for_step(step)
        logits = model(batch.src, batch.tgt_in)  # (B, T, V)
        loss = label_smoothed_cross_entropy(logits, batch.tgt_out, smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if checkpoint is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == steps):
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step + 1,
                "losses": losses,
            }
            atomic_save_torch(state, checkpoint)
    model.eval()
    return losses


# --- Decoding ---------------------------------------------------------------------------


def _check_decode_length(model: Transformer, max_new_tokens: int) -> None:
    if max_new_tokens + 1 > model.max_len:
        raise UsageError(
            f"cannot decode {max_new_tokens} tokens: with <s> that exceeds the model's "
            f"positional table ({model.max_len})"
        )


@torch.no_grad()
def greedy_decode(model: Transformer, src: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    """Pick the most likely next token until ``</s>``: ``(B, S)`` -> ``(B, <= max_new_tokens)``.

    Each row holds the generated ids (``</s>`` included when produced), then :data:`PAD`.
    """
    _check_decode_length(model, max_new_tokens)
    model.eval()
    memory, src_mask = model.encode(src)  # (B, S, C)
    generated = torch.full((src.size(0), 1), BOS, dtype=torch.long, device=src.device)
    finished = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
    for _ in range(max_new_tokens):
        next_token = model.decode(generated, memory, src_mask)[:, -1].argmax(-1)  # (B,)
        next_token = next_token.masked_fill(finished, PAD)
        generated = torch.cat([generated, next_token[:, None]], dim=1)  # (B, t + 1)
        finished |= next_token == EOS
        if finished.all():
            break
    return generated[:, 1:]


def gnmt_length_penalty(length: int, alpha: float) -> float:
    """``((5 + length) / 6) ** alpha`` (Wu et al., 2016); ``alpha = 0`` means no penalty."""
    return ((5 + length) / 6) ** alpha


@torch.no_grad()
def beam_search(
    model: Transformer,
    src: torch.Tensor,
    beam_size: int,
    max_new_tokens: int,
    alpha: float = 0.6,
) -> list[int]:
    """The best output for one source ``(1, S)`` under beam search, ``</s>`` included if produced.

    Each step extends every live hypothesis by every token and keeps the
    ``beam_size`` best by total log-probability; a hypothesis that ends in
    ``</s>`` leaves the beam, which shrinks by one. Finished hypotheses are
    ranked by ``log p / gnmt_length_penalty``. With ``beam_size=1`` this is
    exactly greedy decoding.
    """
    if beam_size < 1:
        raise UsageError(f"beam_size must be at least 1, got {beam_size}")
    _check_decode_length(model, max_new_tokens)
    model.eval()
    memory, src_mask = model.encode(src)  # (1, S, C)
    beams = torch.full((1, 1), BOS, dtype=torch.long, device=src.device)  # (k, t)
    scores = torch.zeros(1, device=src.device)  # (k,)
    finished: list[tuple[float, list[int]]] = []
    for _ in range(max_new_tokens):
        k = beams.size(0)
        logits = model.decode(beams, memory.expand(k, -1, -1), src_mask.expand(k, -1, -1, -1))
        log_probs = logits[:, -1].log_softmax(-1)  # (k, V)
        vocab_size = log_probs.size(-1)
        candidates = (scores[:, None] + log_probs).view(-1)  # (k * V,)
        top_scores, top_index = candidates.topk(beam_size - len(finished))
        beams = torch.cat([beams[top_index // vocab_size], (top_index % vocab_size)[:, None]], 1)
        ended = beams[:, -1] == EOS
        for score, hypothesis in zip(top_scores[ended], beams[ended], strict=True):
            finished.append((score.item(), hypothesis[1:].tolist()))
        beams, scores = beams[~ended], top_scores[~ended]
        if beams.size(0) == 0:
            break
    finished += [(s.item(), b[1:].tolist()) for s, b in zip(scores, beams, strict=True)]
    return max(finished, key=lambda item: item[0] / gnmt_length_penalty(len(item[1]), alpha))[1]


def strip_special(ids: Sequence[int]) -> list[int]:
    """The ids before the first ``</s>``, without padding."""
    kept = []
    for token in ids:
        if token == EOS:
            break
        if token != PAD:
            kept.append(int(token))
    return kept


def sequence_accuracy(
    predicted: Sequence[Sequence[int]], targets: Sequence[Sequence[int]]
) -> float:
    """Share of outputs that equal their target exactly (everything up to ``</s>``)."""
    if len(predicted) != len(targets) or not targets:
        raise UsageError("need as many predictions as targets, and at least one")
    hits = sum(strip_special(p) == list(t) for p, t in zip(predicted, targets, strict=True))
    return hits / len(targets)
