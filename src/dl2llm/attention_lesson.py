"""Week 2 lesson: attention on real sentences, and why attention replaces recurrence.

The experiment behind ``weeks/week2_transformers/attention_demo.py``:

1. Run the pretrained MiniLM encoder (a 6-layer BERT) on :data:`SENTENCES`, recompute
   every layer's attention weights with :mod:`dl2llm.attention` from the model's own
   hidden states and projection weights (they must agree to ~1e-7), find the words "it"
   attends to, and plot the heads of one layer and the sentences side by side.
2. Compare an LSTM layer with a self-attention layer of the same width on growing
   sequences (:func:`dl2llm.attention.compare_with_recurrence`): path length, forward
   wall time on one CPU thread, and first-token gradient; then time what training
   costs (:func:`train_step_ms`: forward, loss, backward) on all available cores.
   Attention does ``O(T^2)`` work but all positions at once; the LSTM does ``O(T)``
   work in ``T`` steps that must run one after another, which extra cores cannot
   speed up (Vaswani et al., 2017, Table 1). Short sequences favour attention; at
   some length its quadratic work outweighs the LSTM's sequential steps. Where
   depends on the machine: the lesson measures it (:func:`verdict`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils import benchmark

from dl2llm.attention import (
    MultiHeadAttention,
    compare_with_recurrence,
    from_bert_attention,
    padding_mask,
)
from dl2llm.errors import UsageError
from dl2llm.models import load_encoder
from dl2llm.plots import plt, save_figure

NAME = "attention_demo"
SENTENCES = (
    "The animal didn't cross the street because it was too tired.",
    "The trophy doesn't fit into the brown suitcase because it is too large.",
    "A business is fraught with too much trouble, and besides it was not my calling.",  # Botchan
)
THREADS = 1  # the forward-only timings of compare_with_recurrence use one CPU core


def available_cores() -> int:
    """CPU cores this process may run on (probed, e.g. 2 on the course machine)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def parse_lengths(text: str) -> tuple[int, ...]:
    """``"16,64,256"`` -> ``(16, 64, 256)``; every length must be at least 2."""
    try:
        lengths = [int(part) for part in text.split(",")]
    except ValueError as err:
        raise UsageError(f"--lengths: expected comma-separated integers, got '{text}'") from err
    if not lengths or min(lengths) < 2:
        raise UsageError(f"--lengths: every length must be at least 2, got '{text}'")
    return tuple(lengths)


@dataclass
class AttentionDemoConfig:
    """Sizes of the recurrence comparison and the MiniLM layer to plot (``quick()`` for CI)."""

    lengths: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024, 2048)
    width: int = 256
    heads: int = 4
    batch: int = 4
    layer: int = 2
    min_run_time: float = 0.5  # seconds of timing per layer and length

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise UsageError(f"--width {self.width} must be divisible by --heads {self.heads}")

    @classmethod
    def quick(cls) -> AttentionDemoConfig:
        return cls(lengths=(16, 64, 256), width=64, min_run_time=0.05)

    def to_dict(self, device: torch.device) -> dict[str, Any]:
        """The results JSON's ``config``."""
        return {
            "lengths": list(self.lengths),
            "width": self.width,
            "heads": self.heads,
            "batch": self.batch,
            "layer": self.layer,
            "device": str(device),
            "forward_threads": THREADS,
            "train_threads": available_cores(),
        }


def minilm_attention(sentences: tuple[str, ...]) -> dict[str, Any]:
    """MiniLM's attention weights (``theirs``) and ours, recomputed from its hidden states.

    ``theirs`` and ``ours`` are ``(layers, B, h, T, T)``; ``tokens`` lists each sentence's
    tokens without padding.
    """
    model, tokenizer = load_encoder()
    model.set_attn_implementation("eager")  # the fused kernels do not return weights
    batch = tokenizer(list(sentences), return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**batch, output_attentions=True, output_hidden_states=True)
        mask = padding_mask(batch["attention_mask"] == 0)  # (B, 1, 1, T)
        ours = []
        for index, layer in enumerate(model.encoder.layer):
            attention = from_bert_attention(layer.attention, model.config.num_attention_heads)
            hidden = out.hidden_states[index]  # (B, T, C): the input of this layer
            attention(hidden, hidden, hidden, mask)
            ours.append(attention.last_weights)  # (B, h, T, T)
    theirs = torch.stack(out.attentions)  # (layers, B, h, T, T)
    tokens = [
        tokenizer.convert_ids_to_tokens(ids[: int(length)])
        for ids, length in zip(batch["input_ids"], batch["attention_mask"].sum(1), strict=True)
    ]
    return {"theirs": theirs, "ours": torch.stack(ours), "tokens": tokens}


def words_it_attends_to(weights: torch.Tensor, tokens: list[str], top: int = 3) -> list[str]:
    """Top tokens that "it" attends to, averaged over heads (``weights`` ``(h, T, T)``)."""
    row = weights.mean(0)[tokens.index("it"), : len(tokens)]  # (T,)
    return [tokens[i] for i in row.argsort(descending=True)[:top].tolist()]


def plot_heads(weights: torch.Tensor, tokens: list[str], layer: int, path: Path) -> Path:
    """Every head of one layer for one sentence (``weights`` ``(h, T, T)``)."""
    n_heads, n = weights.size(0), len(tokens)
    cols = 4
    fig, axes = plt.subplots(
        -(-n_heads // cols), cols, figsize=(4 * cols, 3.6 * -(-n_heads // cols))
    )
    for head, ax in enumerate(axes.flat):
        ax.imshow(weights[head, :n, :n], cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"layer {layer}, head {head}", fontsize=9)
        ax.set_xticks(range(n), tokens, rotation=90, fontsize=6)
        ax.set_yticks(range(n), tokens, fontsize=6)
    fig.suptitle("MiniLM attention (rows: queries, columns: keys)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=110, bbox_inches=None)


def plot_sentences(attention: dict[str, Any], layer: int, path: Path) -> Path:
    """Head-averaged attention of one layer, one panel per sentence."""
    n_sentences = len(attention["tokens"])
    fig, axes = plt.subplots(1, n_sentences, figsize=(6 * n_sentences, 5.5))
    for index, (ax, tokens) in enumerate(zip(axes, attention["tokens"], strict=True)):
        n = len(tokens)
        ax.imshow(attention["ours"][layer, index].mean(0)[:n, :n], cmap="viridis")  # (T, T)
        ax.set_xticks(range(n), tokens, rotation=90, fontsize=7)
        ax.set_yticks(range(n), tokens, fontsize=7)
        ax.set_title(f"sentence {index + 1}, layer {layer}, mean of heads", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110, bbox_inches=None)


def plot_scaling(rows: list[dict[str, float]], threads: int, path: Path) -> Path:
    """Training-step time (and 1-thread forward time) and first-token gradient against length."""
    lengths = [row["seq_len"] for row in rows]
    fig, (time_ax, grad_ax) = plt.subplots(1, 2, figsize=(11, 4))
    time_ax.loglog(lengths, [r["lstm_train_ms"] for r in rows], "o-", label="LSTM train step")
    time_ax.loglog(
        lengths, [r["attention_train_ms"] for r in rows], "s-", label="attention train step"
    )
    time_ax.loglog(lengths, [r["lstm_ms"] for r in rows], "o:", label="LSTM forward, 1 thread")
    time_ax.loglog(
        lengths, [r["attention_ms"] for r in rows], "s:", label="attention forward, 1 thread"
    )
    time_ax.set(xlabel="sequence length T", ylabel="ms",
                title=f"wall time (train step on {threads} threads)")  # fmt: skip
    grad_ax.semilogy(lengths, [r["lstm_first_token_gradient"] for r in rows], "o-", label="LSTM")
    grad_ax.semilogy(
        lengths, [r["attention_first_token_gradient"] for r in rows], "s-", label="self-attention"
    )
    grad_ax.set(xscale="log", xlabel="sequence length T", title="||dy_T/dx_1|| / ||dy_T/dx_T||")
    for ax in (time_ax, grad_ax):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110, bbox_inches=None)


def train_step_ms(
    forward: Callable[[torch.Tensor], torch.Tensor], layer: nn.Module, x: torch.Tensor,
    min_run_time: float, threads: int,
) -> float:  # fmt: skip
    """Median wall time (ms) of one training step: forward, mean-square loss, backward.

    The gradients of the last step stay in ``layer``'s parameters.
    """

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        forward(x).pow(2).mean().backward()

    timer = benchmark.Timer(stmt="step()", globals={"step": step}, num_threads=threads)
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def time_training_steps(
    config: AttentionDemoConfig, device: torch.device, threads: int
) -> list[dict[str, float]]:
    """LSTM vs self-attention training-step time per length, on ``threads`` threads."""
    lstm = nn.LSTM(config.width, config.width, batch_first=True).to(device)
    attention = MultiHeadAttention(config.width, config.heads).to(device)
    rows = []
    for length in config.lengths:
        x = torch.randn(config.batch, length, config.width, device=device)  # (B, T, C)
        lstm_ms = train_step_ms(lambda x: lstm(x)[0], lstm, x, config.min_run_time, threads)
        attention_ms = train_step_ms(
            lambda x: attention(x, x, x), attention, x, config.min_run_time, threads
        )
        winner = "attention" if attention_ms < lstm_ms else "LSTM"
        rows.append({"seq_len": length, "lstm_train_ms": lstm_ms,
                     "attention_train_ms": attention_ms, "train_step_winner": winner})  # fmt: skip
    return rows


def crossover_length(rows: list[dict[str, Any]]) -> int | None:
    """First length from which the LSTM's training step is faster at every longer length."""
    crossover = None
    for row in reversed(rows):
        if row["train_step_winner"] != "LSTM":
            break
        crossover = row["seq_len"]
    return crossover


def verdict(rows: list[dict[str, Any]], threads: int) -> str:
    """Who wins a training step where, and why, in one paragraph."""
    wins = {name: [r["seq_len"] for r in rows if r["train_step_winner"] == name]
            for name in ("attention", "LSTM")}  # fmt: skip
    why = (
        "attention does O(T^2) work but computes all T positions at once as large matrix "
        "products, while the LSTM does O(T) work in T sequential steps, each waiting for the "
        "previous one (small matrix products that extra cores barely speed up)"
    )
    where = f"On {threads} CPU thread(s), a training step (forward, loss, backward) of "
    crossover, longest = crossover_length(rows), rows[-1]["seq_len"]
    if not wins["LSTM"]:
        return (f"{where}self-attention is faster at every length up to T={longest}: {why}; "
                f"the crossover lies beyond T={longest} here.")  # fmt: skip
    if not wins["attention"]:
        return (f"{where}the LSTM is faster at every length measured: {why}; here even "
                "short sequences' T^2 scores cost more than the LSTM's steps.")  # fmt: skip
    where_lstm = (
        f"from T={crossover} on, its T^2 scores per head outweigh the LSTM's sequential steps"
        if crossover
        else f"it is still faster at the longest length, so no crossover up to T={longest}"
    )
    return (
        f"{where}self-attention wins at T in {wins['attention']}, the LSTM at T in "
        f"{wins['LSTM']}: {why}. Attention wins while T is short; {where_lstm} on this CPU."
    )


def sentence_attention(layer: int, out: Path) -> tuple[dict[str, Any], list[str]]:
    """Part 1: MiniLM's attention on :data:`SENTENCES`, recomputed and plotted.

    Returns ``(metrics, artifacts)``: the largest difference between our weights and
    MiniLM's, and the top words "it" attends to in the last layer, per sentence.
    """
    attention = minilm_attention(SENTENCES)
    n_layers = attention["ours"].size(0)
    if not 0 <= layer < n_layers:
        raise UsageError(f"--layer must be between 0 and {n_layers - 1}, got {layer}")
    max_diff = (attention["ours"] - attention["theirs"]).abs().max().item()
    it_attends_to = {
        sentence: words_it_attends_to(attention["ours"][-1, index], tokens)
        for index, (sentence, tokens) in enumerate(zip(SENTENCES, attention["tokens"], strict=True))
    }
    heads_png, sentences_png = f"{NAME}_heads.png", f"{NAME}_sentences.png"
    plot_heads(attention["ours"][layer, 0], attention["tokens"][0], layer, out / heads_png)
    plot_sentences(attention, layer, out / sentences_png)
    metrics = {"minilm_attention_max_abs_diff": max_diff, "it_attends_to": it_attends_to}
    return metrics, [heads_png, sentences_png]


def recurrence_comparison(
    config: AttentionDemoConfig, device: torch.device, out: Path, threads: int
) -> tuple[dict[str, Any], list[str]]:
    """Part 2: LSTM vs self-attention per sequence length, plotted.

    Returns ``(metrics, artifacts)``: the headline numbers and every length's row
    (:class:`dl2llm.attention.RecurrenceVsAttention` plus the training-step times).
    """
    comparison = compare_with_recurrence(
        list(config.lengths), config.width, config.heads, config.batch, device, config.min_run_time
    )
    steps = time_training_steps(config, device, threads)
    rows = [{**row.as_dict(), **step} for row, step in zip(comparison, steps, strict=True)]
    scaling_png = f"{NAME}_scaling.png"
    plot_scaling(rows, threads, out / scaling_png)
    shortest, longest = rows[0], rows[-1]
    metrics = {
        "max_seq_len": longest["seq_len"],
        "train_threads": threads,
        "attention_train_step_speedup_at_max_len": longest["lstm_train_ms"]
        / longest["attention_train_ms"],
        "attention_train_step_speedup_at_min_len": shortest["lstm_train_ms"]
        / shortest["attention_train_ms"],
        "train_step_crossover_len": crossover_length(rows),
        "verdict": verdict(rows, threads),
        "attention_forward_1thread_speedup_at_max_len": longest["lstm_ms"]
        / longest["attention_ms"],
        "lstm_first_token_gradient_at_max_len": longest["lstm_first_token_gradient"],
        "attention_first_token_gradient_at_max_len": longest["attention_first_token_gradient"],
        "rows": rows,
    }
    return metrics, [scaling_png]


def run_lesson(
    config: AttentionDemoConfig, device: torch.device, out: Path
) -> tuple[dict[str, Any], list[str]]:
    """Both parts; training steps on all available cores. Returns ``(metrics, artifacts)``."""
    threads = available_cores()
    torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    metrics, artifacts = sentence_attention(config.layer, out)
    recurrence, plots = recurrence_comparison(config, device, out, threads)
    return {**metrics, **recurrence}, [*artifacts, *plots]
