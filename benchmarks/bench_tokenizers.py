"""Speed of our byte-level BPE against Hugging Face tokenizers and tiktoken, as ratios.

Encoding: the same corpus (Python documentation files) and the same GPT-2 merges
in all three -- our ByteBPETokenizer (starting with an empty cache), a Hugging
Face ``tokenizers`` BPE built from our recovered merges (one thread), and
``tiktoken``; the ids must be identical. Training: our trainer against Hugging
Face's BpeTrainer (one thread) on the same corpus and vocabulary size.
Targets: encode >= 1.0x Hugging Face; training at most 3x slower than Hugging Face.
"""

from __future__ import annotations

import os
import time

from dl2llm.assets import asset_file
from dl2llm.data import python_docs_dir
from dl2llm.models import load_gpt2_tokenizer
from dl2llm.results import save_results
from dl2llm.runtime import check_positive, deliverable_parser, run_main
from dl2llm.tokenizers import reference
from dl2llm.tokenizers.bpe import ByteBPETokenizer

NAME = "bench_tokenizers"
ENCODE_TARGET, TRAIN_TARGET = 1.0, 3.0


def load_corpus(megabytes: float) -> list[str]:
    """Python documentation files, in path order, until ``megabytes`` of UTF-8."""
    docs, size = [], 0
    for path in sorted(python_docs_dir().rglob("*.rst.txt")):
        docs.append(path.read_text(encoding="utf-8"))
        size += len(docs[-1].encode())
        if size >= megabytes * 1e6:
            break
    return docs


def throughput(encode, docs: list[str], n_bytes: int) -> tuple[list[list[int]], float]:
    """``(ids per document, MB/s)``."""
    started = time.perf_counter()
    ids = [encode(doc) for doc in docs]
    return ids, n_bytes / 1e6 / (time.perf_counter() - started)


def timed_train(train) -> tuple[object, float]:
    started = time.perf_counter()
    result = train()
    return result, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument("--mb", type=float, default=4.0, help="corpus size in MB (default 4)")
    parser.add_argument("--vocab-size", type=check_positive, default=8192)
    args = parser.parse_args(argv)
    if args.quick:
        args.mb, args.vocab_size = 0.5, 1024
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # Hugging Face on one thread
    os.environ["RAYON_NUM_THREADS"] = "1"
    started = time.perf_counter()
    docs = load_corpus(args.mb)
    n_bytes = sum(len(doc.encode()) for doc in docs)
    print(f"corpus: {len(docs)} Python documentation files, {n_bytes / 1e6:.2f} MB")

    ours = ByteBPETokenizer.from_tiktoken_file(asset_file("gpt2-bpe", "gpt2.tiktoken"))
    hf = reference.hf_byte_bpe(ours)
    tiktoken_gpt2 = load_gpt2_tokenizer()
    ours_ids, ours_mbs = throughput(ours.encode_ordinary, docs, n_bytes)
    hf_ids, hf_mbs = throughput(lambda doc: hf.encode(doc).ids, docs, n_bytes)
    tk_ids, tk_mbs = throughput(tiktoken_gpt2.encode_ordinary, docs, n_bytes)
    _, warm_mbs = throughput(ours.encode_ordinary, docs, n_bytes)
    same_ids = ours_ids == hf_ids == tk_ids

    ours_trained, ours_train_s = timed_train(lambda: ByteBPETokenizer.train(docs, args.vocab_size))
    hf_trained, hf_train_s = timed_train(lambda: reference.hf_train_byte_bpe(docs, args.vocab_size))
    overlap = len(set(ours_trained.ranks) & reference.hf_token_bytes(hf_trained)) / args.vocab_size

    encode_ratio, train_ratio = ours_mbs / hf_mbs, ours_train_s / hf_train_s
    print(f"\nencode, GPT-2 merges (identical ids in all three: {same_ids})")
    print(f"  ours (cold cache)      {ours_mbs:6.2f} MB/s   {encode_ratio:5.2f}x HF")
    print(f"  ours (warm cache)      {warm_mbs:6.2f} MB/s   {warm_mbs / hf_mbs:5.2f}x HF")
    print(f"  HF tokenizers, 1 thr.  {hf_mbs:6.2f} MB/s   1.00x HF")
    print(f"  tiktoken               {tk_mbs:6.2f} MB/s   {tk_mbs / hf_mbs:5.2f}x HF")
    print(f"\ntraining, vocab {args.vocab_size} (vocab overlap {overlap:.2%})")
    print(f"  ours                   {ours_train_s:6.2f} s     {train_ratio:5.2f}x HF time")
    print(f"  HF BpeTrainer, 1 thr.  {hf_train_s:6.2f} s     1.00x HF time")
    encode_ok, train_ok = encode_ratio >= ENCODE_TARGET, train_ratio <= TRAIN_TARGET
    print(f"\ntarget encode >= {ENCODE_TARGET}x HF: {'met' if encode_ok else 'MISSED'}")
    print(f"target training <= {TRAIN_TARGET}x HF time: {'met' if train_ok else 'MISSED'}")

    metrics = {
        "corpus_mb": n_bytes / 1e6,
        "identical_ids": same_ids,
        "ours_encode_mb_per_s": ours_mbs,
        "ours_warm_encode_mb_per_s": warm_mbs,
        "hf_encode_mb_per_s": hf_mbs,
        "tiktoken_encode_mb_per_s": tk_mbs,
        "encode_ratio_vs_hf": encode_ratio,
        "ours_train_s": ours_train_s,
        "hf_train_s": hf_train_s,
        "train_time_ratio_vs_hf": train_ratio,
        "train_vocab_overlap": overlap,
        "encode_target_met": encode_ok,
        "train_target_met": train_ok,
    }
    config = {"mb": args.mb, "vocab_size": args.vocab_size, "hf_threads": 1}
    save_results(
        NAME,
        metrics,
        out_dir=args.out,
        config=config,
        seed=args.seed,
        quick=args.quick,
        started=started,
    )
    return 0 if same_ids else 1


if __name__ == "__main__":
    run_main(main)
