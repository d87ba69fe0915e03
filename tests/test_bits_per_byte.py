"""Bits per byte: the formula, each scorer's total nats, and the MFU arithmetic."""

from __future__ import annotations

import doctest
import math

import pytest
import torch
from tiny import tiny_gpt, tiny_gpt2, tiny_gpt_config

from dl2llm import bits_per_byte as bpb
from dl2llm.gpt import GPT

TEXT = "Bits per byte is the total negative log-likelihood over the UTF-8 length: é counts twice.\n"


def test_a_uniform_byte_model_scores_exactly_8_bits_per_byte():
    assert bpb.bits_per_byte(len(TEXT.encode()) * math.log(256), len(TEXT.encode())) == 8.0
    assert bpb.bits_per_byte(math.log(2), 1) == 1.0
    with pytest.raises(ValueError, match="at least one byte"):
        bpb.bits_per_byte(1.0, 0)


def test_utf8_bytes_counts_bytes_not_characters():
    assert bpb.utf8_bytes([TEXT]) == len(TEXT) + 1  # "é" is two bytes


def uniform_gpt(vocab_size: int, context_length: int = 8) -> GPT:
    """A GPT whose logits are all zero (tied head of zeros): every token gets 1/vocab."""
    model = tiny_gpt(tiny_gpt_config(vocab_size=vocab_size, context_length=context_length))
    with torch.no_grad():
        model.lm_head.weight.zero_()
    return model


def test_a_uniform_gpt_pays_log_vocab_per_text_token_and_nothing_for_start_tokens():
    stream = bpb.document_stream(["abcdefghij", "klm"], lambda text: list(text.encode()), 256)
    assert stream.tolist()[:2] == [256, 97] and stream.tolist()[11] == 256
    nats = bpb.gpt_nats(uniform_gpt(257), stream, start=256)  # 13 bytes: a window and a tail
    assert nats == pytest.approx(13 * math.log(257), rel=1e-6)
    assert bpb.bits_per_byte(nats, 13) == pytest.approx(math.log2(257), rel=1e-6)


def byte_level_tokenizer():
    """A Hugging Face fast tokenizer: byte-level BPE of 300 ids learned on TEXT, BOS ``<s>`` = 0."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>"], initial_alphabet=alphabet)
    tokenizer.train_from_iterator([TEXT], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>")


def test_our_gpt_and_transformers_give_the_same_total_nats():
    tokenizer = byte_level_tokenizer()
    hf_model = tiny_gpt2(vocab_size=300, special_token=0)
    ours = GPT.from_hf_model(hf_model)
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    stream = bpb.document_stream([TEXT], encode, tokenizer.bos_token_id)
    assert tokenizer.bos_token_id == 0 and len(stream) > 32  # crosses a 32-position window
    theirs = bpb.hf_nats(hf_model, tokenizer, [TEXT], window=32)
    assert bpb.gpt_nats(ours, stream, start=0) == pytest.approx(theirs, rel=1e-5)


def test_kneser_ney_covers_the_whole_vocabulary():
    stream = [0, 1, 2, 1, 2, 3, 0, 1, 2]
    model = bpb.fit_kneser_ney(stream, vocab_size=6, order=2)  # ids 4, 5 never seen
    assert sum(model.prob(w, [1]) for w in range(6)) == pytest.approx(1.0, abs=1e-12)
    expected = -sum(
        math.log(model.prob(w, [prev])) for prev, w in zip(stream, stream[1:], strict=False) if w
    )
    assert bpb.kneser_ney_nats(model, stream, start=0) == pytest.approx(expected)


def test_flops_per_token_is_6n_plus_attention():
    config = tiny_gpt_config(vocab_size=100)  # 1 layer, width 16, 32 positions
    n = sum(p.numel() for p in GPT(config).parameters())
    expected = 6 * (n - 32 * 16) + 12 * 1 * 32 * 16
    assert bpb.training_flops_per_token(config, n) == expected
    assert bpb.model_flops_utilisation(expected, 1e3, expected / 1e6) == pytest.approx(1.0)


def test_the_worked_examples_in_the_docstrings_hold():
    result = doctest.testmod(bpb)
    assert result.attempted >= 4 and result.failed == 0
