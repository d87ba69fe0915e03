"""Tokenizer experiments: byte-level BPE, WordPiece and Unigram LM, trained from scratch.

Trains all three tokenizers (dl2llm.tokenizers) on a corpus -- a folder of UTF-8
text files given with --data, by default the bundled novel *Botchan* -- at several
vocabulary sizes, and measures on held-out text: bytes per token (compression),
tokens per word (fertility), the unknown-token rate, training time and encode
speed. WordPiece merges by likelihood gain, Unigram prunes a large seed
vocabulary by EM, BPE merges the most frequent pair. It checks the from-scratch
trainers against the libraries they imitate (Hugging Face's BPE trainer,
sentencepiece's Unigram trainer) and prints one sentence as each tokenizer cuts it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dl2llm.data import english_text, lm_splits, read_text_folder
from dl2llm.results import save_results
from dl2llm.runtime import (
    UsageError,
    check_positive,
    deliverable_parser,
    resolve_device,
    run_main,
    set_seed,
)
from dl2llm.tokenizers import reference
from dl2llm.tokenizers.bpe import BYTE_ALPHABET
from dl2llm.tokenizers.evaluation import (
    TokenizerReport,
    plot_reports,
    run_experiments,
    token_strings,
)

NAME = "tokenizer_experiments"
FULL_VOCAB_SIZES = (500, 1000, 2000, 4000)
QUICK_VOCAB_SIZES = (300, 500)
QUICK_TRAIN_LINES, QUICK_TEST_LINES = 800, 400
SENTENCE = "The schoolmaster's unaffable reply puzzled everyone in Matsuyama, didn't it?"


def split_corpus(text: str, quick: bool) -> tuple[str, str]:
    """Train and held-out text (the last 10% of lines); quick mode uses less of both."""
    try:
        splits = lm_splits(text)
    except ValueError as err:
        raise UsageError(f"--data: {err}") from err
    train, test = splits["train"], splits["val"] + splits["test"]
    if quick:
        train = "\n".join(train.splitlines()[:QUICK_TRAIN_LINES]) + "\n"
        test = "\n".join(test.splitlines()[:QUICK_TEST_LINES]) + "\n"
    return train, test


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = deliverable_parser(__doc__)
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder of UTF-8 text files to train on (default: the bundled Botchan text)",
    )
    parser.add_argument(
        "--vocab-sizes",
        type=check_positive,
        nargs="+",
        default=None,
        help=f"vocabulary sizes (default: {' '.join(map(str, FULL_VOCAB_SIZES))}; "
        f"quick: {' '.join(map(str, QUICK_VOCAB_SIZES))})",
    )
    parser.add_argument("--sentence", default=SENTENCE, help="the sentence shown tokenized")
    args = parser.parse_args(argv)
    args.vocab_sizes = sorted(
        args.vocab_sizes or (QUICK_VOCAB_SIZES if args.quick else FULL_VOCAB_SIZES)
    )
    if args.vocab_sizes[0] < BYTE_ALPHABET:
        raise UsageError(
            f"--vocab-sizes: {args.vocab_sizes[0]} is smaller than the byte alphabet of "
            f"byte-level BPE ({BYTE_ALPHABET}); use sizes of at least {BYTE_ALPHABET}"
        )
    return args


def print_reports(reports: list[TokenizerReport]) -> None:
    header = ("tokenizer", "vocab", "bytes/tok", "tok/word", "unk %", "train s", "enc MB/s")
    print("\n{:<10} {:>6} {:>9} {:>8} {:>6} {:>8} {:>8}".format(*header))
    for r in reports:
        print(
            f"{r.tokenizer:<10} {r.vocab_size:>6} {r.bytes_per_token:>9.3f} {r.fertility:>8.3f} "
            f"{100 * r.unk_rate:>6.2f} {r.train_s:>8.2f} {r.encode_mb_per_s:>8.2f}"
        )


def print_reference_checks(checks: dict[str, float], vocab_size: int) -> None:
    print(
        f"\nUnigram vs sentencepiece (vocab {vocab_size}): vocab overlap "
        f"{checks['unigram_vocab_overlap_spm']:.1%}, same segmentation for "
        f"{checks['unigram_segmentation_agreement_spm']:.1%} of words, token ratio "
        f"{checks['unigram_token_ratio_spm']:.3f}"
    )
    print(
        f"BPE vs Hugging Face BPE trainer (vocab {vocab_size}): vocab overlap "
        f"{checks['bpe_vocab_overlap_hf']:.1%}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    set_seed(args.seed)
    resolve_device(args.device)
    text = english_text() if args.data is None else read_text_folder(args.data)
    train_text, test_text = split_corpus(text, args.quick)
    print(f"training on {len(train_text.encode()):,} bytes, testing on {len(test_text.encode()):,}")
    try:
        reports, trained = run_experiments(train_text, test_text, args.vocab_sizes, progress=True)
    except ValueError as err:
        raise UsageError(f"--vocab-sizes: {err}") from err
    print_reports(reports)

    largest = args.vocab_sizes[-1]
    checks, spm = reference.compare_with_references(
        train_text, test_text, trained["bpe", largest], trained["unigram", largest]
    )
    print_reference_checks(checks, largest)
    example = {name: token_strings(trained[name, largest], args.sentence) for name, _ in trained}
    example["sentencepiece-unigram"] = spm.encode(args.sentence, out_type=str)
    print(f"\n{args.sentence!r} at vocab {largest}:")
    for name, tokens in example.items():
        print(f"  {name:<22} ({len(tokens):>2}) {' | '.join(tokens)}")

    plot_name = f"{NAME}_vocab_sizes.png"
    plot_reports(reports, args.out / plot_name)
    at_largest = {r.tokenizer: r for r in reports if r.requested_vocab_size == largest}
    metrics = {
        "runs": [r.as_dict() for r in reports],
        "largest_vocab_size": largest,
        **{f"{name}_bytes_per_token": r.bytes_per_token for name, r in at_largest.items()},
        **{f"{name}_fertility": r.fertility for name, r in at_largest.items()},
        **checks,
        "example_sentence": args.sentence,
        "example_tokens": example,
    }
    config = {
        "data": str(args.data) if args.data else "bundled:botchan",
        "vocab_sizes": args.vocab_sizes,
        "train_bytes": len(train_text.encode()),
        "test_bytes": len(test_text.encode()),
    }
    save_results(
        NAME,
        metrics,
        out_dir=args.out,
        config=config,
        seed=args.seed,
        quick=args.quick,
        started=started,
        artifacts=[plot_name],
    )
    print(f"\nresults: {args.out / (NAME + '.json')}, plot: {args.out / plot_name}")
    return 0


if __name__ == "__main__":
    run_main(main)
