"""Speed of our byte-level BPE against Hugging Face tokenizers and tiktoken, as ratios.

Encoding: the same corpus (Python documentation files) and the same GPT-2 merges
in all three -- our ByteBPETokenizer (starting with an empty cache), a Hugging
Face ``tokenizers`` BPE built from our recovered merges (one thread), and
``tiktoken``; the ids must be identical. Training: our trainer against Hugging
Face's BpeTrainer (one thread) on the same corpus and vocabulary size.
Targets: encode >= 1.0x Hugging Face; training at most 3x slower than Hugging Face.
The measuring code: src/dl2llm/tokenizers/speed_bench.py.
"""

from __future__ import annotations

from dl2llm.runtime import check_positive, deliverable_parser, run_main, start_run
from dl2llm.tokenizers.speed_bench import (
    ENCODE_TARGET,
    TRAIN_TARGET,
    compare_bpe_speed,
    corpus_bytes,
    load_corpus,
)


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument("--mb", type=float, default=4.0, help="corpus size in MB (default 4)")
    parser.add_argument("--vocab-size", type=check_positive, default=8192)
    run = start_run("bench_tokenizers", parser, argv)
    args = run.args
    if args.quick:
        args.mb, args.vocab_size = 0.5, 1024
    docs = load_corpus(args.mb)
    print(f"corpus: {len(docs)} Python documentation files, {corpus_bytes(docs) / 1e6:.2f} MB")
    m = compare_bpe_speed(docs, args.vocab_size)

    hf_mbs = m["hf_encode_mb_per_s"]
    print(f"\nencode, GPT-2 merges (identical ids in all three: {m['identical_ids']})")
    print(f"  ours (cold cache)      {m['ours_encode_mb_per_s']:6.2f} MB/s   "
          f"{m['encode_ratio_vs_hf']:5.2f}x HF")  # fmt: skip
    print(f"  ours (warm cache)      {m['ours_warm_encode_mb_per_s']:6.2f} MB/s   "
          f"{m['ours_warm_encode_mb_per_s'] / hf_mbs:5.2f}x HF")  # fmt: skip
    print(f"  HF tokenizers, 1 thr.  {hf_mbs:6.2f} MB/s   1.00x HF")
    print(f"  tiktoken               {m['tiktoken_encode_mb_per_s']:6.2f} MB/s   "
          f"{m['tiktoken_encode_mb_per_s'] / hf_mbs:5.2f}x HF")  # fmt: skip
    print(f"\ntraining, vocab {args.vocab_size} (vocab overlap {m['train_vocab_overlap']:.2%})")
    print(f"  ours                   {m['ours_train_s']:6.2f} s     "
          f"{m['train_time_ratio_vs_hf']:5.2f}x HF time")  # fmt: skip
    print(f"  HF BpeTrainer, 1 thr.  {m['hf_train_s']:6.2f} s     1.00x HF time")
    verdict = {True: "met", False: "MISSED"}
    print(f"\ntarget encode >= {ENCODE_TARGET}x HF: {verdict[m['encode_target_met']]}")
    print(f"target training <= {TRAIN_TARGET}x HF time: {verdict[m['train_target_met']]}")
    run.save(m, config={"mb": args.mb, "vocab_size": args.vocab_size, "hf_threads": 1})
    return 0 if m["identical_ids"] else 1


if __name__ == "__main__":
    run_main(main)
