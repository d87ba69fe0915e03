"""Our GPT-2 (:mod:`dl2llm.gpt`) timed against transformers' ``GPT2LMHeadModel``.

Both models have the same config and the same weights (:meth:`~dl2llm.gpt.GPT.to_hf_model`).
Two measurements, each a ratio against a baseline timed in the same run (interleaved, median
of several repeats, so a busy machine slows both sides alike):

- a training step (forward, cross-entropy, backward, AdamW) of ours against transformers';
- greedy generation: ours with the KV cache against ours without it, and transformers'
  cached ``generate`` as a reference. All three must give the same tokens.

Targets: :data:`TRAIN_TARGET` (train step at least as fast as transformers') and
:data:`CACHE_TARGET` (KV-cache generation >= 5x our uncached generation).
``benchmarks/bench_gpt.py`` runs it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from dl2llm.efficiency.latency import torch_threads
from dl2llm.gpt import GPT, GPTConfig
from dl2llm.models import GPT2_EOT_ID

TRAIN_TARGET, CACHE_TARGET = 1.0, 5.0
PROMPT_TOKENS, TRAIN_BATCH, TRAIN_LENGTH = 16, 4, 256


@dataclass
class GPTBenchConfig:
    """The model timed and how long (``quick()`` for CI: a 2-layer, 64-wide GPT)."""

    model: GPTConfig = field(default_factory=GPTConfig)  # GPT-2 small, random weights
    repeats: int = 5  # timed repeats (generation: half of them, at least 1)
    new_tokens: int = 256  # generated per run (at most what fits after the prompt)

    @classmethod
    def quick(cls) -> GPTBenchConfig:
        return cls(GPTConfig(context_length=96, n_layer=2, n_head=2, n_embd=64), repeats=2)


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    hf: bool,
) -> None:
    """One step of next-token training; ``hf``: ``model`` is transformers' (returns an output)."""
    logits = model(inputs).logits if hf else model(inputs)  # (B, T, vocab)
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def bench_train(
    ours: GPT, theirs: torch.nn.Module, batch: int, length: int, repeats: int
) -> dict[str, float]:
    """Median seconds per training step of each model (after one warm-up round), and the ratio."""
    ids = torch.randint(ours.config.vocab_size, (batch, length + 1))
    inputs, targets = ids[:, :-1], ids[:, 1:]
    ours.train()
    theirs.train()
    optimizers = {
        "ours": torch.optim.AdamW(ours.parameters(), lr=1e-4),
        "hf": torch.optim.AdamW(theirs.parameters(), lr=1e-4),
    }
    times: dict[str, list[float]] = {"ours": [], "hf": []}
    for _ in range(repeats + 1):  # the first round warms up
        for side, model in (("ours", ours), ("hf", theirs)):
            started = time.perf_counter()
            train_step(model, optimizers[side], inputs, targets, hf=side == "hf")
            times[side].append(time.perf_counter() - started)
    ours_s, hf_s = (statistics.median(times[side][1:]) for side in ("ours", "hf"))
    return {"ours_s": ours_s, "hf_s": hf_s, "speedup": hf_s / ours_s}


def bench_generation(
    ours: GPT, theirs: torch.nn.Module, prompt_len: int, new_tokens: int, repeats: int
) -> dict[str, Any]:
    """Greedy generation with and without our KV cache, and with transformers' ``generate``.

    Median wall seconds of each (``cached_s``, ``uncached_s``, ``hf_cached_s``), the cache's
    speed-up by wall and by CPU time, ours over transformers', and whether all gave the
    same tokens.
    """
    ours.eval()
    theirs.eval()
    prompt = torch.randint(ours.config.vocab_size, (1, prompt_len))
    runs: dict[str, Callable[[], torch.Tensor]] = {
        "cached": lambda: ours.generate(prompt, new_tokens, temperature=0, use_cache=True),
        "uncached": lambda: ours.generate(prompt, new_tokens, temperature=0, use_cache=False),
        "hf_cached": lambda: theirs.generate(
            prompt,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=GPT2_EOT_ID,
        ),
    }
    tokens = {name: run() for name, run in runs.items()}  # also the warm-up
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            run()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    seconds = {name: statistics.median(samples) for name, samples in wall.items()}
    cpu_seconds = {name: statistics.median(samples) for name, samples in cpu.items()}
    return {
        **{f"{name}_s": s for name, s in seconds.items()},
        "cache_speedup": seconds["uncached"] / seconds["cached"],
        "cache_speedup_cpu_time": cpu_seconds["uncached"] / cpu_seconds["cached"],
        "vs_hf": seconds["hf_cached"] / seconds["cached"],
        "same_tokens": torch.equal(tokens["cached"], tokens["uncached"])
        and torch.equal(tokens["cached"], tokens["hf_cached"]),
    }


def compare_with_transformers(config: GPTBenchConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Time a random-weight GPT of shape ``config.model`` against its transformers twin.

    Training runs at torch's thread count, generation at one thread (single-token steps:
    one thread is far faster here). ``config.new_tokens`` is capped so that the prompt and
    the new tokens fit the context. Returns ``(metrics, config)`` for the results file.
    """
    repeats = config.repeats
    new_tokens = min(config.new_tokens, config.model.context_length - PROMPT_TOKENS)
    ours = GPT(config.model)
    theirs = ours.to_hf_model()
    length = min(TRAIN_LENGTH, config.model.context_length)
    train = bench_train(ours, theirs, batch=TRAIN_BATCH, length=length, repeats=repeats)
    threads = torch.get_num_threads()
    with torch_threads(1):
        generation = bench_generation(
            ours, theirs, PROMPT_TOKENS, new_tokens, repeats=max(1, repeats // 2)
        )
    metrics = {
        "train_speedup_vs_hf": train["speedup"],
        "train_step_s": train["ours_s"],
        "hf_train_step_s": train["hf_s"],
        "kv_cache_speedup": generation["cache_speedup"],
        "kv_cache_speedup_cpu_time": generation["cache_speedup_cpu_time"],
        "cached_generation_s": generation["cached_s"],
        "uncached_generation_s": generation["uncached_s"],
        "hf_generation_s": generation["hf_cached_s"],
        "generation_speedup_vs_hf": generation["vs_hf"],
        "new_tokens": new_tokens,
        "same_tokens": generation["same_tokens"],
        "train_target_met": train["speedup"] >= TRAIN_TARGET,
        "kv_cache_target_met": generation["cache_speedup"] >= CACHE_TARGET,
    }
    return metrics, {**vars(config.model), "repeats": repeats, "train_threads": threads}
