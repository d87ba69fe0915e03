"""The LSTM language model: tokens, batching, sampling, and exact checkpoint/resume."""

from __future__ import annotations

import math

import pytest
import torch

from dl2llm.nn.lstm_lm import (
    EOS,
    UNK,
    LMTrainConfig,
    LSTMLanguageModel,
    Vocabulary,
    batchify,
    evaluate_nll,
    generate,
    tokenize,
    train_lm,
)

TEXT = (
    "\n".join(
        f"the {a} cat sat on the {b} mat ."
        for a in ("big", "small", "old")
        for b in ("red", "blue")
    )
    * 20
)


def small_setup(seed: int = 0):
    tokens = tokenize(TEXT)
    vocab = Vocabulary.build(tokens, min_count=1)
    ids = vocab.encode(tokens)
    torch.manual_seed(seed)
    model = LSTMLanguageModel(len(vocab), dim=16, layers=2, dropout=0.2)
    return vocab, ids, model


def test_tokenize_and_vocabulary():
    assert tokenize("Don't stop!\n\nGo 42") == ["don't", "stop", "!", EOS, "go", "42", EOS]
    vocab = Vocabulary.build(["a", "a", "b", "c", "c"], min_count=2)
    assert vocab.itos == [UNK, EOS, "a", "c"]
    assert vocab.encode(["a", "b", "c"]).tolist() == [2, 0, 3]
    assert vocab.map_unknown(["a", "b"]) == ["a", UNK]
    # a size cap keeps the most frequent words (ties alphabetical); <unk> and <eos> count
    capped = Vocabulary.build(["c", "c", "c", "b", "b", "a", "a", "d"], min_count=1, max_size=4)
    assert capped.itos == [UNK, EOS, "a", "c"]


def test_batchify_makes_parallel_streams():
    streams = batchify(torch.arange(10), 3)
    assert streams.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    with pytest.raises(ValueError, match="too short"):
        batchify(torch.arange(3), 4)


def test_weights_are_tied():
    _, _, model = small_setup()
    assert model.decoder.weight.data_ptr() == model.embedding.weight.data_ptr()


def test_training_lowers_perplexity_below_uniform():
    vocab, ids, model = small_setup()
    before = evaluate_nll(model, ids, batch_size=4)
    train_lm(model, ids, ids, LMTrainConfig(epochs=3, batch_size=4, bptt=10, lr=1e-2))
    after = evaluate_nll(model, ids, batch_size=4)
    assert after < before
    assert math.exp(after) < len(vocab) / 2


def test_resumed_run_reaches_the_same_loss(tmp_path):
    config = LMTrainConfig(epochs=4, batch_size=4, bptt=10, lr=1e-2)
    _, ids, model = small_setup()
    straight = train_lm(model, ids, ids, config)

    _, ids, model = small_setup()
    checkpoint = tmp_path / "lm.ckpt"
    partial = train_lm(model, ids, ids, config, checkpoint, stop_after=2)
    assert len(partial["history"]["val_loss"]) == 2 and checkpoint.is_file()
    _, ids, fresh_model = small_setup(seed=123)  # a new process would start from scratch
    resumed = train_lm(fresh_model, ids, ids, config, checkpoint)

    assert resumed["history"] == straight["history"]
    assert resumed["best_val_loss"] == straight["best_val_loss"]


def test_resuming_another_runs_checkpoint_is_a_clear_error(tmp_path):
    from dl2llm.errors import UsageError

    config = LMTrainConfig(epochs=2, batch_size=4, bptt=10, lr=1e-2)
    vocab, ids, model = small_setup()
    checkpoint = tmp_path / "lm.ckpt"
    train_lm(model, ids, ids, config, checkpoint, stop_after=1)
    other = LSTMLanguageModel(len(vocab) + 5, dim=16, layers=2, dropout=0.2)  # another vocabulary
    with pytest.raises(UsageError, match="another vocabulary.*without --resume"):
        train_lm(other, ids, ids, config, checkpoint)


def test_generation_is_seeded_and_respects_top_k():
    vocab, ids, model = small_setup()
    train_lm(model, ids, ids, LMTrainConfig(epochs=2, batch_size=4, bptt=10, lr=1e-2))
    a = generate(model, vocab, "the", 12, top_k=3, generator=torch.Generator().manual_seed(1))
    b = generate(model, vocab, "the", 12, top_k=3, generator=torch.Generator().manual_seed(1))
    assert a == b and len(a.split()) == 12
    greedy_like = generate(model, vocab, "the", 5, top_k=1)
    assert greedy_like == generate(model, vocab, "the", 5, top_k=1)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, vocab, "the", 3, temperature=0)
