"""The week 2 tokenizer lesson behind ``weeks/week2_transformers/tokenizer_experiments.py``.

1. :func:`load_corpus`: the training text (a folder of UTF-8 files, or the bundled
   *Botchan*) and held-out text (its last 10% of lines).
2. :func:`run_lesson`: byte-level BPE, WordPiece and Unigram LM trained at each
   vocabulary size (:func:`~dl2llm.tokenizers.evaluation.run_experiments`), the largest
   ones checked against Hugging Face's BPE trainer and sentencepiece's Unigram trainer
   (:func:`~dl2llm.tokenizers.reference.compare_with_references`), and one sentence as
   each of them cuts it; a plot of the measures against vocabulary size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dl2llm.data import english_text, lm_splits, read_text_folder
from dl2llm.errors import UsageError
from dl2llm.tokenizers import reference
from dl2llm.tokenizers.bpe import BYTE_ALPHABET
from dl2llm.tokenizers.evaluation import plot_reports, run_experiments, token_strings

NAME = "tokenizer_experiments"
SENTENCE = "The schoolmaster's unaffable reply puzzled everyone in Matsuyama, didn't it?"


@dataclass
class TokenizerExperimentsConfig:
    """Vocabulary sizes to train at and how much of the corpus to use (``quick()`` for CI)."""

    vocab_sizes: tuple[int, ...] = (500, 1000, 2000, 4000)
    train_lines: int | None = None  # None: every training line
    test_lines: int | None = None  # None: every held-out line

    @classmethod
    def quick(cls) -> TokenizerExperimentsConfig:
        return cls(vocab_sizes=(300, 500), train_lines=800, test_lines=400)

    def sorted_vocab_sizes(self) -> list[int]:
        """The vocabulary sizes, sorted; none may be below BPE's byte alphabet."""
        sizes = sorted(self.vocab_sizes)
        if sizes[0] < BYTE_ALPHABET:
            raise UsageError(
                f"--vocab-sizes: {sizes[0]} is smaller than the byte alphabet of "
                f"byte-level BPE ({BYTE_ALPHABET}); use sizes of at least {BYTE_ALPHABET}"
            )
        return sizes


def first_lines(text: str, limit: int | None) -> str:
    """The first ``limit`` lines of ``text`` (all of it when ``limit`` is None)."""
    return text if limit is None else "\n".join(text.splitlines()[:limit]) + "\n"


def split_corpus(text: str, config: TokenizerExperimentsConfig) -> tuple[str, str]:
    """Train and held-out text (the last 10% of lines), cut to ``config``'s line limits."""
    try:
        splits = lm_splits(text)
    except ValueError as err:
        raise UsageError(f"--data: {err}") from err
    train, test = splits["train"], splits["val"] + splits["test"]
    return first_lines(train, config.train_lines), first_lines(test, config.test_lines)


def load_corpus(data: Path | None, config: TokenizerExperimentsConfig) -> tuple[str, str]:
    """Train and held-out text of the folder ``data`` (``None``: the bundled *Botchan*)."""
    text = english_text() if data is None else read_text_folder(data)
    return split_corpus(text, config)


def run_lesson(
    train_text: str, test_text: str, vocab_sizes: list[int], sentence: str, out_dir: str | Path
) -> tuple[dict[str, Any], list[str]]:
    """Train and measure the three tokenizers, check them against the libraries; plot.

    ``vocab_sizes`` must be sorted (the largest is compared and shown). Returns the
    metrics (``runs``: one record per tokenizer and size; bytes/token and fertility at
    the largest size; the reference checks; ``example_tokens``: ``sentence`` as each
    tokenizer cuts it) and the artifact names (the plot).
    """
    try:
        reports, trained = run_experiments(train_text, test_text, vocab_sizes, progress=True)
    except ValueError as err:
        raise UsageError(f"--vocab-sizes: {err}") from err
    largest = vocab_sizes[-1]
    checks, spm = reference.compare_with_references(
        train_text, test_text, trained["bpe", largest], trained["unigram", largest]
    )
    example = {name: token_strings(trained[name, largest], sentence) for name, _ in trained}
    example["sentencepiece-unigram"] = spm.encode(sentence, out_type=str)
    plot_name = f"{NAME}_vocab_sizes.png"
    plot_reports(reports, Path(out_dir) / plot_name)
    at_largest = {r.tokenizer: r for r in reports if r.requested_vocab_size == largest}
    metrics = {
        "runs": [r.as_dict() for r in reports],
        "largest_vocab_size": largest,
        **{f"{name}_bytes_per_token": r.bytes_per_token for name, r in at_largest.items()},
        **{f"{name}_fertility": r.fertility for name, r in at_largest.items()},
        **checks,
        "example_sentence": sentence,
        "example_tokens": example,
    }
    return metrics, [plot_name]
