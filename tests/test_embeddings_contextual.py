"""Contextual embeddings from MiniLM: our mean pooling equals sentence-transformers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dl2llm.embeddings.contextual import (
    POLYSEMY_EXAMPLES,
    encode,
    mean_pool,
    sense_similarity,
    word_in_context,
)
from dl2llm.models import encoder_path, load_encoder
from dl2llm.runtime import UsageError

SENTENCES = [
    "The river bank was muddy after the rain.",
    "I opened an account at the bank.",
    "Word vectors place similar words close together, and contextual models go further.",
    "Hi",
]


@pytest.fixture(scope="module")
def encoder():
    return load_encoder()


def test_mean_pool_ignores_padding():
    tokens = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])  # (1, 3, 2)
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(mean_pool(tokens, mask), torch.tensor([[2.0, 3.0]]))


def test_encode_equals_sentence_transformers(encoder):
    from sentence_transformers import SentenceTransformer

    model, tokenizer = encoder
    reference = SentenceTransformer(encoder_path(), device="cpu").encode(SENTENCES, batch_size=2)
    ours = encode(SENTENCES, model, tokenizer, batch_size=3)  # other batches: other padding
    assert ours.shape == (4, 384)
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)


def test_same_word_gets_different_vectors_in_different_senses(encoder):
    model, tokenizer = encoder
    river = word_in_context(SENTENCES[0], "bank", model, tokenizer)
    money = word_in_context(SENTENCES[1], "bank", model, tokenizer)
    assert river.shape == (384,)
    cosine = river @ money / (np.linalg.norm(river) * np.linalg.norm(money))
    assert cosine < 0.9
    scores = sense_similarity("bank", POLYSEMY_EXAMPLES["bank"], model, tokenizer)
    assert scores["within_sense"] > scores["across_senses"]
    with pytest.raises(UsageError, match="'bank' does not occur"):
        word_in_context("Our embankment held.", "bank", model, tokenizer)
