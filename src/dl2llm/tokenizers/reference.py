"""The reference libraries our from-scratch tokenizers are checked against.

- Hugging Face ``tokenizers`` (Rust): byte-level BPE built from *our* ranks, and
  its own BPE trainer, for the equality tests and the speed benchmark.
- ``transformers.BertTokenizerFast``: WordPiece with BERT's normalization.
- ``sentencepiece``: the Unigram LM trainer of Kudo (2018).

Everything here runs offline; nothing is downloaded.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from dl2llm.tokenizers.bpe import ByteBPETokenizer
from dl2llm.tokenizers.unigram import META_PIECES, UnigramTokenizer, split_words


def _byte_chars() -> dict[int, str]:
    """GPT-2's printable stand-in character for each byte (how HF stores byte tokens)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return bytes_to_unicode()


def _byte_level_text(token: bytes, byte_to_char: dict[int, str]) -> str:
    return "".join(byte_to_char[b] for b in token)


def hf_byte_bpe(tokenizer: ByteBPETokenizer) -> HFTokenizer:
    """A Hugging Face byte-level BPE with exactly our vocabulary and merges."""
    byte_to_char = _byte_chars()
    vocab = {_byte_level_text(t, byte_to_char): r for t, r in tokenizer.ranks.items()}
    merges = [
        (_byte_level_text(a, byte_to_char), _byte_level_text(b, byte_to_char))
        for a, b in tokenizer.merges()
    ]
    hf = HFTokenizer(models.BPE(vocab, merges))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.decoder = decoders.ByteLevel()
    return hf


def hf_train_byte_bpe(texts: Iterable[str], vocab_size: int) -> HFTokenizer:
    """Hugging Face's own byte-level BPE trainer with the GPT-2 pre-tokenizer."""
    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    hf.train_from_iterator(texts, trainer=trainer)
    return hf


def hf_token_bytes(hf: HFTokenizer) -> set[bytes]:
    """The vocabulary of a Hugging Face byte-level tokenizer as byte strings."""
    char_to_byte = {c: b for b, c in _byte_chars().items()}
    return {bytes(char_to_byte[c] for c in token) for token in hf.get_vocab()}


def bert_tokenizer_fast(vocab_file: str | Path):
    """``transformers.BertTokenizerFast`` for an uncased ``vocab.txt`` (BERT's defaults)."""
    from transformers import BertTokenizerFast

    return BertTokenizerFast(vocab=str(vocab_file), do_lower_case=True)


def train_sentencepiece(
    sentences: Iterable[str], vocab_size: int, model_type: str = "unigram", **options
):
    """Train ``sentencepiece`` in memory and return a ``SentencePieceProcessor``.

    Defaults are sentencepiece's own except that training is deterministic
    (one thread, all sentences used, no shuffling) and silent.
    """
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(sentences)),
        model_writer=model,
        vocab_size=vocab_size,
        model_type=model_type,
        num_threads=1,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        minloglevel=2,
        **options,
    )
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def compare_with_sentencepiece(ours: UnigramTokenizer, sp, text: str) -> dict[str, float]:
    """How close our Unigram model is to a ``sentencepiece`` one on ``text``.

    - ``vocab_overlap``: share of sentencepiece's pieces (meta pieces aside) we also have;
    - ``segmentation_agreement``: share of word occurrences cut into identical pieces;
    - ``token_ratio``: our token count divided by sentencepiece's (1.0 = same compression).
    """
    theirs = {sp.id_to_piece(i) for i in range(sp.get_piece_size())} - set(META_PIECES)
    counts: dict[str, int] = {}
    for word in split_words(text):
        counts[word] = counts.get(word, 0) + 1
    same = ours_total = their_total = 0
    for word, count in counts.items():
        mine, reference = ours.segment(word), sp.encode(word[1:], out_type=str)
        same += count * (mine == reference)
        ours_total += count * len(mine)
        their_total += count * len(reference)
    return {
        "vocab_overlap": len(theirs & set(ours.scores)) / max(1, len(theirs)),
        "segmentation_agreement": same / max(1, sum(counts.values())),
        "token_ratio": ours_total / max(1, their_total),
    }


def compare_with_references(
    train_text: str, test_text: str, bpe: ByteBPETokenizer, unigram: UnigramTokenizer
) -> tuple[dict[str, float], object]:
    """Train the reference BPE and Unigram trainers on the same text at the same size.

    Returns ``(metrics, sentencepiece_model)``: the share of Hugging Face's BPE
    vocabulary we also learned, and :func:`compare_with_sentencepiece` on
    ``test_text``.
    """
    lines = train_text.splitlines()
    hf_bpe = hf_train_byte_bpe(lines, bpe.vocab_size)
    sp = train_sentencepiece(lines, unigram.vocab_size, hard_vocab_limit=False)
    overlap = len(set(bpe.ranks) & hf_token_bytes(hf_bpe)) / hf_bpe.get_vocab_size()
    metrics = {"bpe_vocab_overlap_hf": overlap}
    for key, value in compare_with_sentencepiece(unigram, sp, test_text).items():
        metrics[f"unigram_{key}_spm"] = value
    return metrics, sp
