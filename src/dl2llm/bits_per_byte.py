"""Bits per byte: one yardstick for language models with different tokenizers.

A model's loss per *token* cannot be compared across tokenizers: a 4k-token BPE cuts text into
more, easier pieces than a 49k one. What every model does define is the probability of the
whole text, so its total negative log-likelihood (nats) can be spread over the text's UTF-8
bytes instead (Gao et al., 2020, "The Pile", section 3; also used by nanoGPT's character runs)::

    bits per byte = total nats of the text / (ln 2 * number of UTF-8 bytes)

A model that knows nothing and gives every byte 1/256 scores exactly 8; a perfect compressor
of English lies near 1. Each model scores the text with its own tokenizer, predicting every
token of each document from a start token, so the sum covers the text and nothing else.

This module scores three kinds of model that way: our :class:`~dl2llm.gpt.GPT`, a
Kneser-Ney n-gram (:class:`~dl2llm.nn.ngram.KneserNeyLM`) and a Hugging Face causal LM. It also
estimates model FLOPs utilisation (MFU; Chowdhery et al., 2022, "PaLM", appendix B): the
FLOPs a training step needs (about ``6 N`` per token for ``N`` parameters, plus attention)
times tokens/s, as a fraction of the machine's measured matmul peak.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from dl2llm.gpt import GPT, GPTConfig
from dl2llm.hardware import matmul_gflops
from dl2llm.nn.ngram import KneserNeyLM


def utf8_bytes(docs: Sequence[str]) -> int:
    """Total UTF-8 length of ``docs`` (what bits per byte divides by).

    >>> utf8_bytes(["abc", "é"])  # "é" is two bytes
    5
    """
    return sum(len(doc.encode("utf-8")) for doc in docs)


def bits_per_byte(total_nats: float, n_bytes: int) -> float:
    """``total_nats / (ln 2 * n_bytes)``: a text's negative log-likelihood per UTF-8 byte, in bits.

    A uniform model over the 256 byte values pays ``ln 256`` nats per byte, i.e. 8 bits:

    >>> bits_per_byte(1000 * math.log(256), 1000)
    8.0
    """
    if n_bytes <= 0:
        raise ValueError(f"need at least one byte of text, got {n_bytes}")
    return total_nats / (math.log(2) * n_bytes)


def document_stream(docs: Sequence[str], encode: Callable[[str], list[int]], start: int) -> Tensor:
    """``[start, *encode(doc)]`` for every document, concatenated into one 1-D id tensor.

    >>> document_stream(["ab", "c"], lambda text: [ord(c) for c in text], 0).tolist()
    [0, 97, 98, 0, 99]
    """
    ids: list[int] = []
    for doc in docs:
        ids += [start, *encode(doc)]
    return torch.tensor(ids, dtype=torch.long)


@torch.no_grad()
def gpt_nats(model: GPT, stream: Tensor, start: int, batch_size: int = 16) -> float:
    """Total nats our GPT gives the text tokens of ``stream`` (targets equal to ``start`` skipped).

    The stream is cut into non-overlapping context-length windows (the last one may be
    shorter); every token after the first is predicted exactly once.
    """
    block = model.config.context_length
    n_full = (len(stream) - 1) // block
    inputs = stream[: n_full * block].view(n_full, block)  # (N, T)
    targets = stream[1 : n_full * block + 1].view(n_full, block)  # (N, T)
    batches = [
        (inputs[i : i + batch_size], targets[i : i + batch_size])
        for i in range(0, n_full, batch_size)
    ]
    if len(stream) - 1 > n_full * block:  # the shorter tail window
        batches.append((stream[n_full * block : -1][None], stream[n_full * block + 1 :][None]))
    was_training = model.training
    model.eval()
    total = 0.0
    for batch_inputs, batch_targets in batches:
        logits = model(batch_inputs)  # (B, T, vocab)
        nll = F.cross_entropy(logits.flatten(0, 1), batch_targets.flatten(), reduction="none")
        total += nll[batch_targets.flatten() != start].sum().item()
    model.train(was_training)
    return total


def kneser_ney_nats(model: KneserNeyLM, stream: Sequence[int], start: int) -> float:
    """Total nats of a Kneser-Ney model on the text tokens of ``stream`` (``start`` skipped).

    Each token is predicted from the ``order - 1`` tokens before it, across documents.
    """
    history = model.order - 1
    return -sum(
        math.log(model.prob(token, stream[max(0, i - history) : i]))
        for i, token in enumerate(stream)
        if i > 0 and token != start
    )


def fit_kneser_ney(stream: Sequence[int], vocab_size: int, order: int) -> KneserNeyLM:
    """A Kneser-Ney model of ``stream`` whose base distribution covers all ``vocab_size`` ids.

    :class:`~dl2llm.nn.ngram.KneserNeyLM` ends its recursion in a uniform distribution over
    the tokens it saw; widening that to the whole vocabulary keeps probabilities summing to 1
    when validation text holds a token training never did.
    """
    model = KneserNeyLM(order).fit(list(stream))
    model.vocab = set(range(vocab_size))
    return model


@torch.no_grad()
def hf_nats(
    model, tokenizer, docs: Sequence[str], window: int = 1024, start_token: str = "<|endoftext|>"
) -> float:
    """Total nats a Hugging Face causal LM gives ``docs``, each predicted from a start token.

    The start token is ``start_token`` (the document separator of GPT-2 and SmolLM2
    pretraining) where the vocabulary has it, else BOS. The model's own tokenizer encodes
    each document (no special tokens); windows of ``window`` tokens bound the memory of the
    ``(T, vocab)`` logits.
    """
    start = tokenizer.get_vocab().get(start_token, tokenizer.bos_token_id)
    total = 0.0
    for doc in docs:
        ids = torch.tensor([start, *tokenizer(doc, add_special_tokens=False)["input_ids"]])
        for offset in range(0, len(ids) - 1, window):
            chunk = ids[offset : offset + window + 1]
            logits = model(chunk[:-1][None]).logits[0].float()  # (T, vocab)
            total += F.cross_entropy(logits, chunk[1:], reduction="sum").item()
    return total


def training_flops_per_token(config: GPTConfig, parameters: int) -> float:
    """FLOPs of one training token: ``6 N + 12 L T C`` (PaLM appendix B, as nanoGPT's MFU).

    ``N`` excludes position embeddings (a lookup, no multiply); ``12 L T C`` is attention's
    ``QK^T`` and ``AV`` products over a full context, forward and backward.
    """
    positions = config.context_length * config.n_embd
    body = 6 * (parameters - positions)
    return body + 12 * config.n_layer * config.context_length * config.n_embd


def peak_gflops(size: int = 2048, min_time_s: float = 1.0) -> float:
    """This CPU's fp32 matmul rate now (GFLOP/s), the denominator of MFU."""
    return matmul_gflops("fp32", size=size, min_time_s=min_time_s)


def model_flops_utilisation(flops_per_token: float, tokens_per_s: float, peak: float) -> float:
    """Achieved training FLOP/s as a fraction of ``peak`` GFLOP/s.

    >>> model_flops_utilisation(1e6, 5e3, 100.0)
    0.05
    """
    return flops_per_token * tokens_per_s / (peak * 1e9)
