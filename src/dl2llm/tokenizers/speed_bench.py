"""Speed of our byte-level BPE against Hugging Face ``tokenizers`` and ``tiktoken``, as ratios.

Encoding: the same corpus (Python documentation files) and the same GPT-2 merges in all
three -- our :class:`~dl2llm.tokenizers.bpe.ByteBPETokenizer` (first with an empty cache,
then warm), a Hugging Face BPE built from our recovered merges
(:func:`~dl2llm.tokenizers.reference.hf_byte_bpe`, one thread) and ``tiktoken``; the ids
must be identical. Training: our trainer against Hugging Face's ``BpeTrainer`` (one thread)
on the same corpus and vocabulary size, and how many of the learned tokens they share.

Baseline: Hugging Face, timed in the same run. Targets: encode >= :data:`ENCODE_TARGET` x
Hugging Face's speed; training at most :data:`TRAIN_TARGET` x Hugging Face's time.
``benchmarks/bench_tokenizers.py`` runs it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from dl2llm.assets import asset_file
from dl2llm.data import python_docs_dir
from dl2llm.models import load_gpt2_tokenizer
from dl2llm.tokenizers import reference
from dl2llm.tokenizers.bpe import ByteBPETokenizer

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


def corpus_bytes(docs: list[str]) -> int:
    """The size of ``docs`` in UTF-8 bytes."""
    return sum(len(doc.encode()) for doc in docs)


def throughput(
    encode: Callable[[str], list[int]], docs: list[str], n_bytes: int
) -> tuple[list[list[int]], float]:
    """``(ids per document, MB/s)``."""
    started = time.perf_counter()
    ids = [encode(doc) for doc in docs]
    return ids, n_bytes / 1e6 / (time.perf_counter() - started)


def timed_train(train: Callable[[], Any]) -> tuple[Any, float]:
    """What ``train()`` returns, and the seconds it took."""
    started = time.perf_counter()
    result = train()
    return result, time.perf_counter() - started


def compare_bpe_speed(docs: list[str], vocab_size: int) -> dict[str, Any]:
    """Encode ``docs`` with all three tokenizers and train both trainers: the metrics.

    Speeds in MB/s, training in seconds, ratios against Hugging Face, whether the ids are
    identical, the share of a ``vocab_size`` vocabulary both trainers learn, the targets met.
    """
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # Hugging Face on one thread
    os.environ["RAYON_NUM_THREADS"] = "1"
    n_bytes = corpus_bytes(docs)
    ours = ByteBPETokenizer.from_tiktoken_file(asset_file("gpt2-bpe", "gpt2.tiktoken"))
    hf = reference.hf_byte_bpe(ours)
    tiktoken_gpt2 = load_gpt2_tokenizer()
    ours_ids, ours_mbs = throughput(ours.encode_ordinary, docs, n_bytes)
    hf_ids, hf_mbs = throughput(lambda doc: hf.encode(doc).ids, docs, n_bytes)
    tk_ids, tk_mbs = throughput(tiktoken_gpt2.encode_ordinary, docs, n_bytes)
    _, warm_mbs = throughput(ours.encode_ordinary, docs, n_bytes)

    ours_trained, ours_train_s = timed_train(lambda: ByteBPETokenizer.train(docs, vocab_size))
    hf_trained, hf_train_s = timed_train(lambda: reference.hf_train_byte_bpe(docs, vocab_size))
    overlap = len(set(ours_trained.ranks) & reference.hf_token_bytes(hf_trained)) / vocab_size

    encode_ratio, train_ratio = ours_mbs / hf_mbs, ours_train_s / hf_train_s
    return {
        "corpus_mb": n_bytes / 1e6,
        "identical_ids": ours_ids == hf_ids == tk_ids,
        "ours_encode_mb_per_s": ours_mbs,
        "ours_warm_encode_mb_per_s": warm_mbs,
        "hf_encode_mb_per_s": hf_mbs,
        "tiktoken_encode_mb_per_s": tk_mbs,
        "encode_ratio_vs_hf": encode_ratio,
        "ours_train_s": ours_train_s,
        "hf_train_s": hf_train_s,
        "train_time_ratio_vs_hf": train_ratio,
        "train_vocab_overlap": overlap,
        "encode_target_met": encode_ratio >= ENCODE_TARGET,
        "train_target_met": train_ratio <= TRAIN_TARGET,
    }
