"""Word2Vec: skip-gram with negative sampling (SGNS), batched in PyTorch.

Mikolov et al., "Efficient Estimation of Word Representations in Vector Space"
(2013) and "Distributed Representations of Words and Phrases and their
Compositionality" (NeurIPS 2013).

Skip-gram learns two vectors per word: ``v_w`` for a word at the centre of a
window and ``u_w`` for a word seen as context. For every (centre ``c``, context
``o``) pair within a window, and ``k`` "negative" words ``n_1..n_k`` drawn from
the noise distribution ``P(w) ~ count(w) ** 0.75``, it minimises

    -log sigmoid(u_o . v_c) - sum_i log sigmoid(-u_{n_i} . v_c)

i.e. it learns to tell real context words from random ones: a cheap stand-in for
the full softmax over the vocabulary. Words used in similar contexts end up with
similar ``v``; those are the word vectors.

The C code and gensim update one pair at a time. Here an epoch's pairs are
built at once with NumPy (random window shrinking and frequent-word subsampling
included, see :mod:`dl2llm.embeddings.vocab`), shuffled, and fed in batches of
1,024 pairs with negatives drawn for the whole batch at once. Each batch takes
one plain SGD step on the *summed* loss, using the closed-form gradient (tested
against autograd) and the reference's learning rate, 0.025 decaying linearly to
0.0001, so a batch moves the vectors about as far as 1,024 sequential per-pair
updates would.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from gensim.models import KeyedVectors, Word2Vec
from tqdm import tqdm

from dl2llm.embeddings.keyed import to_keyed_vectors
from dl2llm.embeddings.threads import one_thread
from dl2llm.embeddings.vocab import (
    EncodedCorpus,
    build_vocabulary,
    encode_corpus,
    keep_probabilities,
    noise_distribution,
    subsample,
)
from dl2llm.runtime import UsageError


def skipgram_pairs(
    corpus: EncodedCorpus, window: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """All (centre, context) id pairs of one pass over the corpus.

    As in word2vec, each centre word draws its own window size uniformly from
    ``1..window``, so near neighbours are seen more often than far ones. Pairs
    never cross a sentence boundary. Returns two ``(P,)`` arrays.
    """
    ids, sentence_ids = corpus.ids, corpus.sentence_ids
    spans = rng.integers(1, window + 1, size=len(ids))  # (N,) effective window per centre
    centres, contexts = [], []
    for distance in range(1, window + 1):
        same_sentence = sentence_ids[:-distance] == sentence_ids[distance:]  # (N - d,)
        left, right = np.arange(len(ids) - distance), np.arange(distance, len(ids))
        forward = same_sentence & (spans[:-distance] >= distance)  # centre left, context right
        backward = same_sentence & (spans[distance:] >= distance)  # centre right, context left
        centres += [ids[left[forward]], ids[right[backward]]]
        contexts += [ids[right[forward]], ids[left[backward]]]
    return np.concatenate(centres), np.concatenate(contexts)


def sgns_loss(centre: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """Negative-sampling loss of each pair.

    ``centre`` and ``context`` are ``(B, D)`` vectors ``v_c`` and ``u_o``;
    ``negatives`` is ``(B, K, D)``, the ``u`` of ``K`` noise words per pair.
    Returns ``(B,)``: ``-log s(u_o . v_c) - sum_k log s(-u_k . v_c)``.
    """
    positive_score = (centre * context).sum(dim=-1)  # (B,)
    negative_score = torch.bmm(negatives, centre.unsqueeze(-1)).squeeze(-1)  # (B, K)
    return -(F.logsigmoid(positive_score) + F.logsigmoid(-negative_score).sum(dim=-1))


class SkipGram:
    """Centre vectors ``v`` (the word vectors) and context vectors ``u``, both ``(V, D)``.

    Initialised like word2vec: ``v`` uniform in ``[-0.5/D, 0.5/D]``, ``u`` zero.
    """

    def __init__(self, vocab_size: int, dim: int, generator: torch.Generator | None = None):
        self.centre = (torch.rand(vocab_size, dim, generator=generator) - 0.5) / dim  # (V, D)
        self.context = torch.zeros(vocab_size, dim)  # (V, D)

    def to(self, device: str | torch.device) -> SkipGram:
        self.centre, self.context = self.centre.to(device), self.context.to(device)
        return self

    @torch.no_grad()
    def sgd_step(
        self, centres: torch.Tensor, contexts: torch.Tensor, negatives: torch.Tensor, lr: float
    ) -> float:
        """One SGD step on the summed loss of a batch; returns that loss (before the step).

        ``centres`` and ``contexts`` are ``(B,)`` word ids, ``negatives`` ``(B, K)``.

        The gradient has a closed form: with ``g = sigmoid(score) - label``
        (label 1 for the true context, 0 for noise words), the score
        ``u . v`` pushes ``v`` by ``g * u`` and ``u`` by ``g * v``. Only the
        rows in the batch change (``index_add_`` sums repeated words), exactly
        what autograd plus SGD on sparse embeddings would do, at about half the
        cost here.
        """
        v = self.centre[centres]  # (B, D)
        u_true = self.context[contexts]  # (B, D)
        u_noise = self.context[negatives]  # (B, K, D)
        true_score = (u_true * v).sum(dim=-1)  # (B,)
        noise_score = (u_noise * v.unsqueeze(1)).sum(dim=-1)  # (B, K)
        loss = -(F.logsigmoid(true_score).sum() + F.logsigmoid(-noise_score).sum())
        g_true = torch.sigmoid(true_score) - 1.0  # (B,)
        g_noise = torch.sigmoid(noise_score)  # (B, K)
        grad_v = g_true.unsqueeze(1) * u_true + (g_noise.unsqueeze(2) * u_noise).sum(dim=1)
        grad_u_noise = g_noise.unsqueeze(2) * v.unsqueeze(1)  # (B, K, D)
        self.context.index_add_(0, contexts, g_true.unsqueeze(1) * v, alpha=-lr)
        self.context.index_add_(
            0, negatives.reshape(-1), grad_u_noise.reshape(-1, v.shape[1]), alpha=-lr
        )
        self.centre.index_add_(0, centres, grad_v, alpha=-lr)
        return loss.item()


def linear_learning_rate(alpha: float, min_alpha: float, progress: float) -> float:
    """word2vec's schedule: from ``alpha`` down to ``min_alpha`` as progress goes 0 -> 1."""
    return alpha - (alpha - min_alpha) * min(progress, 1.0)


def shuffled_pairs(
    corpus: EncodedCorpus, keep: np.ndarray, window: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch of (centre, context) pairs, freshly subsampled and shuffled: two ``(P,)``."""
    centres, contexts = skipgram_pairs(subsample(corpus, keep, rng), window, rng)
    order = rng.permutation(len(centres))
    return torch.as_tensor(centres[order]), torch.as_tensor(contexts[order])


def train_word2vec(
    sentences: list[list[str]],
    vector_size: int = 100,
    window: int = 5,
    min_count: int = 5,
    negative: int = 5,
    sample: float = 1e-3,
    epochs: int = 5,
    alpha: float = 0.025,
    min_alpha: float = 1e-4,
    batch_size: int = 1024,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> KeyedVectors:
    """Train skip-gram with negative sampling; returns gensim-style ``KeyedVectors``.

    The arguments mean what gensim's ``Word2Vec(sg=1, ...)`` arguments of the
    same name mean. The result has ``.vectors`` ``(V, D)``, ``.index_to_key``
    and ``.most_similar``.
    """
    if min(window, negative, epochs, batch_size) < 1:
        raise UsageError("window, negative, epochs and batch_size must all be at least 1")
    vocab = build_vocabulary(sentences, min_count)
    corpus = encode_corpus(sentences, vocab)
    keep = keep_probabilities(vocab.counts, sample)
    noise = torch.as_tensor(noise_distribution(vocab.counts), dtype=torch.float32)  # (V,)
    rng, generator = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    model = SkipGram(len(vocab), vector_size, generator).to(device)
    total_pairs, pairs_done = None, 0
    with one_thread():
        for epoch in range(epochs):
            centres, contexts = shuffled_pairs(corpus, keep, window, rng)
            total_pairs = total_pairs or len(centres) * epochs  # the schedule's horizon
            bar = tqdm(
                range(0, len(centres), batch_size),
                desc=f"word2vec epoch {epoch + 1}/{epochs}",
                disable=not progress,
            )
            loss_sum = 0.0
            for start in bar:
                batch_centres = centres[start : start + batch_size]  # (B,)
                negatives = torch.multinomial(
                    noise, len(batch_centres) * negative, replacement=True, generator=generator
                ).view(-1, negative)  # (B, K)
                lr = linear_learning_rate(alpha, min_alpha, pairs_done / total_pairs)
                loss_sum += model.sgd_step(
                    batch_centres.to(device),
                    contexts[start : start + batch_size].to(device),
                    negatives.to(device),
                    lr,
                )
                pairs_done += len(batch_centres)
            bar.set_postfix(loss_per_pair=loss_sum / len(centres))
    return to_keyed_vectors(vocab.words, model.centre.cpu().numpy())


def train_gensim_word2vec(
    sentences: list[list[str]],
    vector_size: int = 100,
    window: int = 5,
    min_count: int = 5,
    negative: int = 5,
    sample: float = 1e-3,
    epochs: int = 5,
    alpha: float = 0.025,
    min_alpha: float = 1e-4,
    seed: int = 0,
    workers: int = 1,
) -> KeyedVectors:
    """The reference: gensim's skip-gram with negative sampling, same settings."""
    model = Word2Vec(
        sentences,
        sg=1,
        hs=0,
        vector_size=vector_size,
        window=window,
        min_count=min_count,
        negative=negative,
        sample=sample,
        epochs=epochs,
        alpha=alpha,
        min_alpha=min_alpha,
        seed=seed,
        workers=workers,
    )
    return model.wv
