"""Measuring tokenizers: compression, fertility, unknown rate and speed.

- *bytes per token*: UTF-8 bytes of the text divided by the number of tokens.
  Higher is better compression: the model sees more text per position.
- *fertility*: tokens per whitespace-separated word (Rust et al., 2021, "How
  Good is Your Tokenizer?"). 1.0 means every word is a single token.
- *unknown rate*: the share of tokens that are the unknown token. Byte-level
  BPE has none by construction; WordPiece and Unigram lose characters they
  never saw in training.
- *encode speed*: megabytes of text encoded per second, starting from empty
  caches (BPE's piece cache makes repeated words nearly free).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from dl2llm.tokenizers.bpe import ByteBPETokenizer
from dl2llm.tokenizers.unigram import META_PIECES, UnigramTokenizer
from dl2llm.tokenizers.wordpiece import WordPieceTokenizer

Tokenizer = ByteBPETokenizer | WordPieceTokenizer | UnigramTokenizer


def encode_ids(tokenizer: Tokenizer, text: str) -> list[int]:
    """Ids without BERT's ``[CLS]``/``[SEP]`` wrapper, so all three count the same thing."""
    if isinstance(tokenizer, WordPieceTokenizer):
        return tokenizer.encode(text, add_special_tokens=False)
    return tokenizer.encode(text)


def token_strings(tokenizer: Tokenizer, text: str) -> list[str]:
    """How a tokenizer cuts ``text``, as readable strings.

    A byte-level token may hold part of a character: its stray bytes are shown
    escaped (``"Ü"`` split in two shows as ``["\\xc3", "\\x9c"]``).
    """
    if isinstance(tokenizer, ByteBPETokenizer):
        pieces = map(tokenizer.token_bytes, tokenizer.encode(text))
        return [piece.decode("utf-8", "backslashreplace") for piece in pieces]
    return tokenizer.tokenize(text)


def unknown_id(tokenizer: Tokenizer) -> int | None:
    """The id of the unknown token (``None`` for byte-level BPE, which has none)."""
    if isinstance(tokenizer, WordPieceTokenizer):
        return tokenizer.unk_id
    if isinstance(tokenizer, UnigramTokenizer):
        return tokenizer.piece_to_id[META_PIECES[0]]
    return None


@dataclass(frozen=True)
class TokenizerReport:
    """What one tokenizer measured on one text."""

    tokenizer: str
    requested_vocab_size: int
    vocab_size: int
    bytes_per_token: float
    fertility: float
    unk_rate: float
    train_s: float
    encode_mb_per_s: float

    def as_dict(self) -> dict:
        return asdict(self)


def encode_speed(tokenizer: Tokenizer, text: str) -> float:
    """Megabytes of ``text`` encoded per second (caches start empty for a fresh tokenizer)."""
    started = time.perf_counter()
    encode_ids(tokenizer, text)
    return len(text.encode("utf-8")) / 1e6 / max(time.perf_counter() - started, 1e-9)


def evaluate(
    name: str,
    tokenizer: Tokenizer,
    text: str,
    train_s: float,
    requested_vocab_size: int,
    speed_text: str | None = None,
) -> TokenizerReport:
    """Compression, fertility and unknown rate of ``tokenizer`` on ``text``.

    Encode speed is measured on ``speed_text`` (default ``text``) first, so a
    fresh tokenizer starts with empty caches. ``requested_vocab_size`` is what
    training asked for; ``vocab_size`` is what it reached (fewer when the text
    runs out of pairs or pieces).
    """
    mb_per_s = encode_speed(tokenizer, text if speed_text is None else speed_text)
    ids = encode_ids(tokenizer, text)
    n_bytes, n_words = len(text.encode("utf-8")), len(text.split())
    unk = unknown_id(tokenizer)
    n_unknown = 0 if unk is None else ids.count(unk)
    return TokenizerReport(
        tokenizer=name,
        requested_vocab_size=requested_vocab_size,
        vocab_size=tokenizer.vocab_size,
        bytes_per_token=n_bytes / max(1, len(ids)),
        fertility=len(ids) / max(1, n_words),
        unk_rate=n_unknown / max(1, len(ids)),
        train_s=train_s,
        encode_mb_per_s=mb_per_s,
    )


TOKENIZERS: dict[str, type[Tokenizer]] = {
    "bpe": ByteBPETokenizer,
    "wordpiece": WordPieceTokenizer,
    "unigram": UnigramTokenizer,
}


def run_experiments(
    train_text: str, test_text: str, vocab_sizes: list[int], progress: bool = False
) -> tuple[list[TokenizerReport], dict[tuple[str, int], Tokenizer]]:
    """Train every tokenizer at every vocabulary size on ``train_text``; measure on ``test_text``.

    Encode speed is measured on both texts together (more text, steadier number).
    Returns the reports and the trained tokenizers keyed by ``(name, vocab_size)``.
    """
    from tqdm.auto import tqdm

    reports, trained = [], {}
    jobs = [(size, name) for size in vocab_sizes for name in TOKENIZERS]
    for size, name in tqdm(jobs, desc="training", disable=not progress):
        started = time.perf_counter()
        tokenizer = TOKENIZERS[name].train(train_text, size)
        seconds = time.perf_counter() - started
        trained[name, size] = tokenizer
        reports.append(
            evaluate(name, tokenizer, test_text, seconds, size, speed_text=train_text + test_text)
        )
    return reports, trained


def plot_reports(reports: list[TokenizerReport], path: str | Path) -> Path:
    """Bytes/token, fertility and encode speed against vocabulary size, one line per tokenizer."""
    from dl2llm.plots import plt, save_figure

    fields = [
        ("bytes_per_token", "bytes / token (higher = better compression)"),
        ("fertility", "tokens / word"),
        ("encode_mb_per_s", "encode speed (MB/s)"),
    ]
    figure, axes = plt.subplots(1, len(fields), figsize=(15, 4.2))
    for axis, (field, label) in zip(axes, fields, strict=True):
        for name in dict.fromkeys(r.tokenizer for r in reports):
            rows = sorted((r for r in reports if r.tokenizer == name), key=lambda r: r.vocab_size)
            axis.plot(
                [r.vocab_size for r in rows], [getattr(r, field) for r in rows], "o-", label=name
            )
        axis.set_xscale("log", base=2)
        axis.set_xlabel("vocabulary size")
        axis.set_title(label)
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    return save_figure(figure, path, dpi=110, bbox_inches=None, image_format="png")
