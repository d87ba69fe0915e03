"""Tokenizer experiments: byte-level BPE, WordPiece and Unigram LM, trained from scratch.

Trains all three tokenizers (dl2llm.tokenizers) on a corpus -- a folder of UTF-8
text files given with --data, by default the bundled novel *Botchan* -- at several
vocabulary sizes, and measures on held-out text: bytes per token (compression),
tokens per word (fertility), the unknown-token rate, training time and encode
speed. WordPiece merges by likelihood gain, Unigram prunes a large seed
vocabulary by EM, BPE merges the most frequent pair. It checks the from-scratch
trainers against the libraries they imitate (Hugging Face's BPE trainer,
sentencepiece's Unigram trainer) and prints one sentence as each tokenizer cuts it.

Outputs: results/tokenizer_experiments.json, tokenizer_experiments_vocab_sizes.png. The
lesson's code: src/dl2llm/tokenizers/tokenizer_lesson.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dl2llm.runtime import check_positive, deliverable_parser, resolve_device, run_main, start_run
from dl2llm.tokenizers.tokenizer_lesson import (
    NAME,
    SENTENCE,
    TokenizerExperimentsConfig,
    load_corpus,
    run_lesson,
)


def print_results(metrics: dict) -> None:
    """The measures per tokenizer and size, the reference checks, the example sentence."""
    header = ("tokenizer", "vocab", "bytes/tok", "tok/word", "unk %", "train s", "enc MB/s")
    print("\n{:<10} {:>6} {:>9} {:>8} {:>6} {:>8} {:>8}".format(*header))
    for r in metrics["runs"]:
        print(
            f"{r['tokenizer']:<10} {r['vocab_size']:>6} {r['bytes_per_token']:>9.3f} "
            f"{r['fertility']:>8.3f} {100 * r['unk_rate']:>6.2f} {r['train_s']:>8.2f} "
            f"{r['encode_mb_per_s']:>8.2f}"
        )
    largest = metrics["largest_vocab_size"]
    print(
        f"\nUnigram vs sentencepiece (vocab {largest}): vocab overlap "
        f"{metrics['unigram_vocab_overlap_spm']:.1%}, same segmentation for "
        f"{metrics['unigram_segmentation_agreement_spm']:.1%} of words, token ratio "
        f"{metrics['unigram_token_ratio_spm']:.3f}"
    )
    print(
        f"BPE vs Hugging Face BPE trainer (vocab {largest}): vocab overlap "
        f"{metrics['bpe_vocab_overlap_hf']:.1%}"
    )
    print(f"\n{metrics['example_sentence']!r} at vocab {largest}:")
    for name, tokens in metrics["example_tokens"].items():
        print(f"  {name:<22} ({len(tokens):>2}) {' | '.join(tokens)}")


def main(argv: list[str] | None = None) -> int:
    full, quick = TokenizerExperimentsConfig(), TokenizerExperimentsConfig.quick()
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
        help=f"vocabulary sizes (default: {' '.join(map(str, full.vocab_sizes))}; "
        f"quick: {' '.join(map(str, quick.vocab_sizes))})",
    )
    parser.add_argument("--sentence", default=SENTENCE, help="the sentence shown tokenized")
    run = start_run(NAME, parser, argv)
    args = run.args
    config = TokenizerExperimentsConfig.quick() if args.quick else TokenizerExperimentsConfig()
    if args.vocab_sizes:
        config = replace(config, vocab_sizes=tuple(args.vocab_sizes))
    vocab_sizes = config.sorted_vocab_sizes()
    resolve_device(args.device)
    train_text, test_text = load_corpus(args.data, config)
    train_bytes, test_bytes = len(train_text.encode()), len(test_text.encode())
    print(f"training on {train_bytes:,} bytes, testing on {test_bytes:,}")
    metrics, artifacts = run_lesson(train_text, test_text, vocab_sizes, args.sentence, args.out)
    print_results(metrics)
    print(f"\nplot: {args.out / artifacts[0]}")
    config = {
        "data": str(args.data) if args.data else "bundled:botchan",
        "vocab_sizes": vocab_sizes,
        "train_bytes": train_bytes,
        "test_bytes": test_bytes,
    }
    run.save(metrics, config=config, artifacts=artifacts)
    return 0


if __name__ == "__main__":
    run_main(main)
