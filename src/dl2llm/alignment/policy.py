"""The policy of RLHF: a causal LM plus LoRA, whose reference is the same model, adapter off.

RLHF keeps the tuned policy ``pi`` close to the model it started from,
``pi_ref``. With LoRA (Hu et al., 2021) the policy is ``W + (alpha / r) B A``
on frozen weights ``W``, so the reference is the *same* network with the
adapter switched off: :func:`adapter_disabled` sets every LoRA scaling to zero
for the duration of a ``with`` block (``peft``'s ``disable_adapter`` does the
same for a peft model). No second copy of the weights is needed.

:func:`sample` draws fixed-length completions with a key-value cache (each new
token attends to the cached keys and values of the earlier ones: one token's
work per step instead of the whole sequence's), with a ``torch.Generator`` so
runs repeat exactly; the end-of-turn token is banned so every completion has
the same length. :func:`token_logps` scores the completion tokens, running the
output layer only on the completion's positions.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import torch
from torch import Tensor, nn

from dl2llm.finetune.lora import inject_lora, lora_layers

LLAMA_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
Reference = Callable[[], AbstractContextManager]


@contextlib.contextmanager
def adapter_disabled(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block ``model`` computes its base model: every LoRA scaling is 0."""
    layers = list(lora_layers(model).values())
    scalings = [layer.scaling for layer in layers]
    try:
        for layer in layers:
            layer.scaling = 0.0
        yield model
    finally:
        for layer, scaling in zip(layers, scalings, strict=True):
            layer.scaling = scaling


def reference_of(model: nn.Module) -> Reference:
    """A factory of ``with`` blocks in which ``model`` is its reference (adapter off)."""
    if hasattr(model, "disable_adapter"):  # a peft model
        return model.disable_adapter
    return lambda: adapter_disabled(model)


def add_lora(model: nn.Module, rank: int) -> nn.Module:
    """Freeze ``model`` and give its attention and MLP projections LoRA adapters (in place)."""
    inject_lora(model, LLAMA_LORA_TARGETS, r=rank, alpha=2.0 * rank)
    return model.eval()  # no dropout: PPO's ratio must compare the same function


def tiny_llama_policy(vocab_size: int, seed: int = 0) -> nn.Module:
    """A random 2-layer, 64-wide Llama over ``vocab_size`` tokens: quick (CI) runs' policy."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
    )
    return LlamaForCausalLM(config).eval()


@torch.no_grad()
def sample(
    model: nn.Module,
    prompts: Tensor,
    length: int,
    generator: torch.Generator,
    banned: tuple[int, ...] = (),
    temperature: float = 1.0,
) -> Tensor:
    """``length`` sampled tokens after each prompt ``(B, P)``, with a KV cache: ``(B, length)``.

    ``banned`` token ids (the end-of-turn token) are never drawn. Runs on one
    CPU thread: one token's small matrix products are slower on two.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = model(input_ids=prompts, use_cache=True)  # the whole prompt once
        tokens = []
        for _ in range(length):
            logits = out.logits[:, -1].float() / temperature  # (B, V)
            logits[:, list(banned)] = float("-inf")
            token = torch.multinomial(logits.softmax(-1), 1, generator=generator)  # (B, 1)
            tokens.append(token)
            out = model(input_ids=token, cache=out.cache, use_cache=True)
    finally:
        torch.set_num_threads(threads)
    return torch.cat(tokens, 1)


def sample_batched(
    model: nn.Module,
    prompts: Tensor,
    length: int,
    generator: torch.Generator,
    banned: tuple[int, ...] = (),
    batch_size: int = 32,
) -> Tensor:
    """:func:`sample` in chunks of ``batch_size`` prompts, ``(N, length)``."""
    return torch.cat(
        [
            sample(model, prompts[i : i + batch_size], length, generator, banned)
            for i in range(0, len(prompts), batch_size)
        ]
    )


def token_logps(
    model: nn.Module, sequences: Tensor, prompt_length: int, with_hidden: bool = False
) -> tuple[Tensor, Tensor | None]:
    """Log-prob of each completion token ``(B, L)`` of ``sequences`` ``(B, P + L)``.

    Position ``t`` predicts token ``t + 1``, so the logits of positions
    ``P - 1 .. P + L - 2`` score the ``L`` completion tokens; only those are
    computed. With ``with_hidden`` also the last hidden states at those
    positions ``(B, L, C)`` (what a value head reads).
    """
    L = sequences.size(1) - prompt_length
    out = model(input_ids=sequences, logits_to_keep=L + 1, output_hidden_states=with_hidden)
    logps = out.logits[:, :-1].float().log_softmax(-1)  # (B, L, V)
    chosen = torch.gather(logps, 2, sequences[:, prompt_length:, None]).squeeze(-1)  # (B, L)
    hidden = out.hidden_states[-1][:, prompt_length - 1 : -1] if with_hidden else None
    return chosen, hidden


@torch.no_grad()
def sequence_kl(
    model: nn.Module,
    reference: Reference,
    sequences: Tensor,
    prompt_length: int,
    batch_size: int = 32,
) -> Tensor:
    """Summed ``log pi - log pi_ref`` of each completion ``(B,)``: a sample estimate of the KL.

    On completions sampled from ``pi`` its mean estimates ``KL(pi || pi_ref)`` in nats.
    """
    chunks = []
    for i in range(0, len(sequences), batch_size):
        batch = sequences[i : i + batch_size]
        logps, _ = token_logps(model, batch, prompt_length)
        with reference():
            ref_logps, _ = token_logps(model, batch, prompt_length)
        chunks.append((logps - ref_logps).sum(1))
    return torch.cat(chunks)


@torch.no_grad()
def reset_adapters(model: nn.Module, seed: int) -> None:
    """Every LoRA layer back to its start (``A`` random, seeded; ``B`` zero): policy = reference."""
    generator = torch.Generator().manual_seed(seed)
    for layer in lora_layers(model).values():
        bound = 1.0 / math.sqrt(layer.lora_A.size(1))  # kaiming_uniform_(a=sqrt(5)), as nn.Linear
        layer.lora_A.copy_(
            torch.empty_like(layer.lora_A).uniform_(-bound, bound, generator=generator)
        )
        layer.lora_B.zero_()
