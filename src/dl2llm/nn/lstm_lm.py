"""An LSTM language model: predict the next word from everything read so far.

A language model assigns ``P(w_1..w_T) = prod_t P(w_t | w_<t)``. An LSTM
(Hochreiter & Schmidhuber, 1997) carries a memory cell through the sequence, so
its context is not cut at ``n - 1`` words like an n-gram model's. We follow the
classic recipe of Zaremba et al. (2014) and Merity et al. (2018): word-level
tokens, truncated backpropagation through time (the hidden state flows across
batches but gradients stop every ``bptt`` steps), dropout, gradient clipping,
and input/output embedding tying (Press & Wolf, 2017; Inan et al., 2017).

The quality measure is perplexity, ``exp(mean negative log-likelihood)``: the
effective number of words the model hesitates between at each step.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from dl2llm.errors import UsageError
from dl2llm.io import atomic_save_torch

UNK, EOS = "<unk>", "<eos>"
TOKEN_PATTERN = re.compile(r"[a-z]+(?:'[a-z]+)?|[0-9]+|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-cased words and punctuation, ``<eos>`` at each line end.

    >>> tokenize("Hello, world!\\nI'm here.")
    ['hello', ',', 'world', '!', '<eos>', "i'm", 'here', '.', '<eos>']
    """
    tokens: list[str] = []
    for line in text.splitlines():
        if line.strip():
            tokens += TOKEN_PATTERN.findall(line.lower()) + [EOS]
    return tokens


@dataclass
class Vocabulary:
    """Word <-> id maps; rare words become ``<unk>`` (Penn Treebank keeps the 10k most frequent)."""

    itos: list[str]
    stoi: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.stoi = {word: i for i, word in enumerate(self.itos)}

    @classmethod
    def build(
        cls, tokens: list[str], min_count: int = 2, max_size: int | None = None
    ) -> Vocabulary:
        """Words seen ``min_count`` times, at most ``max_size`` in all (the most frequent kept).

        >>> Vocabulary.build("a a a b b c c d".split(), min_count=2, max_size=4).itos
        ['<unk>', '<eos>', 'a', 'b']
        """
        counts = Counter(tokens)
        kept = sorted(
            (w for w, c in counts.items() if c >= min_count and w not in (UNK, EOS)),
            key=lambda w: (-counts[w], w),  # most frequent first, ties alphabetical
        )
        if max_size is not None:
            kept = kept[: max(max_size - 2, 0)]  # <unk> and <eos> count towards the size
        return cls([UNK, EOS, *sorted(kept)])

    def __len__(self) -> int:
        return len(self.itos)

    def map_unknown(self, tokens: list[str]) -> list[str]:
        """Replace out-of-vocabulary tokens by ``<unk>`` (for the n-gram baseline)."""
        return [t if t in self.stoi else UNK for t in tokens]

    def encode(self, tokens: list[str]) -> torch.Tensor:
        unk = self.stoi[UNK]
        return torch.tensor([self.stoi.get(t, unk) for t in tokens], dtype=torch.long)


class LSTMLanguageModel(nn.Module):
    """Embedding -> dropout -> multi-layer LSTM -> dropout -> (tied) output layer."""

    def __init__(
        self, vocab_size: int, dim: int = 256, layers: int = 2, dropout: float = 0.3,
        tie_weights: bool = True,
    ):  # fmt: skip
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim)
        self.drop = nn.Dropout(dropout)
        between_layers = dropout if layers > 1 else 0.0
        self.lstm = nn.LSTM(dim, dim, layers, dropout=between_layers, batch_first=True)
        self.decoder = nn.Linear(dim, vocab_size)
        if tie_weights:
            self.decoder.weight = self.embedding.weight  # one matrix for input and output
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(
        self, ids: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        x = self.drop(self.embedding(ids))  # (B, T, C)
        out, state = self.lstm(x, state)  # (B, T, C)
        return self.decoder(self.drop(out)), state  # (B, T, V)


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a token stream into ``batch_size`` parallel streams: ``(N,) -> (B, N // B)``."""
    n = ids.numel() // batch_size
    if n < 2:
        raise ValueError(f"text too short for batch size {batch_size}: {ids.numel()} tokens")
    return ids[: n * batch_size].view(batch_size, n)


def _windows(streams: torch.Tensor, bptt: int):
    """Yield ``(inputs, targets)`` windows of ``(B, <= bptt)`` along the streams."""
    for start in range(0, streams.size(1) - 1, bptt):
        end = min(start + bptt, streams.size(1) - 1)
        yield streams[:, start:end], streams[:, start + 1 : end + 1]


@torch.no_grad()
def evaluate_nll(model: LSTMLanguageModel, ids: torch.Tensor, batch_size: int = 10,
                 bptt: int = 35) -> float:  # fmt: skip
    """Mean negative log-likelihood per token (the log of perplexity)."""
    model.eval()
    streams = batchify(ids, batch_size)
    total, count, state = 0.0, 0, None
    for inputs, targets in _windows(streams, bptt):
        logits, state = model(inputs, state)
        total += nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="sum"
        ).item()
        count += targets.numel()
    return total / count


@dataclass
class LMTrainConfig:
    """Hyperparameters of :func:`train_lm`."""

    epochs: int = 20
    batch_size: int = 32
    bptt: int = 35
    lr: float = 3e-3
    weight_decay: float = 1e-2
    clip: float = 0.5
    lr_decay: float = 0.5


def train_lm(
    model: LSTMLanguageModel,
    train_ids: torch.Tensor,
    val_ids: torch.Tensor,
    config: LMTrainConfig,
    checkpoint: Path | None = None,
    stop_after: int | None = None,
) -> dict:
    """Train with truncated BPTT; checkpoint every epoch and resume from ``checkpoint``.

    ``stop_after`` ends this call after that many epochs in total (simulating an
    interrupted run); calling again with the same ``checkpoint`` resumes exactly
    where it stopped, random state included. Returns the history and the epoch
    with the best validation loss, whose weights are loaded into ``model``.
    """
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    history = {"train_loss": [], "val_loss": [], "lr": []}
    best = {"val_loss": math.inf, "epoch": -1, "state": None}
    start_epoch = 0
    if checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=False)
        try:
            model.load_state_dict(saved["model"])
        except RuntimeError as err:  # another vocabulary or size: not this run's checkpoint
            raise UsageError(
                f"{checkpoint} belongs to a run with another vocabulary or model size "
                "(another --data?); run without --resume to start afresh"
            ) from err
        optimizer.load_state_dict(saved["optimizer"])
        history, best, start_epoch = saved["history"], saved["best"], saved["epoch"] + 1
        torch.set_rng_state(saved["rng_state"])
    streams = batchify(train_ids, config.batch_size)
    last_epoch = config.epochs if stop_after is None else min(config.epochs, stop_after)
    for epoch in range(start_epoch, last_epoch):
        model.train()
        state, losses = None, []
        windows = list(_windows(streams, config.bptt))
        for inputs, targets in tqdm(windows, desc=f"epoch {epoch + 1}", leave=False):
            if state is not None:
                state = tuple(s.detach() for s in state)  # truncate backprop here
            logits, state = model(inputs, state)
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)),
                                               targets.reshape(-1))  # fmt: skip
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            losses.append(loss.item())
        val_loss = evaluate_nll(model, val_ids)
        history["train_loss"].append(sum(losses) / len(losses))
        history["val_loss"].append(val_loss)
        history["lr"].append(optimizer.param_groups[0]["lr"])
        if val_loss < best["val_loss"]:
            best = {"val_loss": val_loss, "epoch": epoch, "state": _copy_state(model)}
        else:
            for group in optimizer.param_groups:
                group["lr"] *= config.lr_decay  # anneal when validation stops improving
        if checkpoint is not None:
            atomic_save_torch(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "history": history,
                    "best": best,
                    "epoch": epoch,
                    "rng_state": torch.get_rng_state(),
                    "config": asdict(config),
                },
                checkpoint,
            )
    if best["state"] is not None and last_epoch == config.epochs:
        model.load_state_dict(best["state"])
    return {"history": history, "best_epoch": best["epoch"], "best_val_loss": best["val_loss"]}


def _copy_state(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def generate(
    model: LSTMLanguageModel,
    vocab: Vocabulary,
    prompt: str,
    n_words: int = 30,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> str:
    """Sample a continuation: logits / temperature, keep the ``top_k`` best, sample.

    Line ends (``<eos>``) are shown as ``/``.
    """
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    model.eval()
    ids = vocab.encode(tokenize(prompt)[:-1] or [EOS]).unsqueeze(0)  # (1, T)
    logits, state = model(ids)
    words = []
    for _ in range(n_words):
        next_logits = logits[0, -1] / temperature  # (V,)
        if top_k is not None:
            kth = torch.topk(next_logits, min(top_k, next_logits.numel())).values[-1]
            next_logits = next_logits.masked_fill(next_logits < kth, -math.inf)
        next_id = torch.multinomial(next_logits.softmax(-1), 1, generator=generator)
        words.append(vocab.itos[next_id.item()])
        logits, state = model(next_id.view(1, 1), state)
    return " ".join(words).replace(EOS, "/")
