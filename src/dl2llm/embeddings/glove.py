"""GloVe: global vectors from weighted least squares on log co-occurrence counts.

Pennington, Socher and Manning, "GloVe: Global Vectors for Word Representation"
(EMNLP 2014).

Where skip-gram streams over windows, GloVe first counts, once, how often each
word ``j`` appears near each word ``i``: ``X_ij``, with a pair at distance ``d``
adding ``1/d`` (near words count more). It then fits vectors ``w_i``, context
vectors ``w~_j`` and biases so that ``w_i . w~_j + b_i + b~_j ~ log X_ij``,
minimising the weighted least-squares cost over the non-zero counts

    J = sum_ij f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij) ** 2,
    f(x) = (x / x_max) ** alpha  if x < x_max  else 1      (x_max = 100, alpha = 3/4).

``f`` damps rare, noisy pairs and caps very frequent ones. Training is AdaGrad
(learning rate 0.05) on shuffled batches of non-zero entries; the word vectors
are ``w + w~`` (the paper's choice: the two sets are equivalent up to noise).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import torch
import torch.nn.functional as F
from gensim.models import KeyedVectors
from torch import nn
from tqdm import tqdm

from dl2llm.embeddings.keyed import to_keyed_vectors
from dl2llm.embeddings.threads import one_thread
from dl2llm.embeddings.vocab import EncodedCorpus, build_vocabulary, encode_corpus
from dl2llm.runtime import UsageError


def cooccurrence_matrix(
    corpus: EncodedCorpus, vocab_size: int, window: int = 10
) -> scipy.sparse.csr_matrix:
    """Symmetric ``(V, V)`` counts: each pair at distance ``d <= window`` adds ``1/d``.

    Pairs never cross a sentence boundary; both ``X_ij`` and ``X_ji`` are counted.
    """
    if window < 1:
        raise UsageError(f"window must be at least 1, got {window}")
    ids, sentence_ids = corpus.ids, corpus.sentence_ids
    counts = scipy.sparse.csr_matrix((vocab_size, vocab_size), dtype=np.float64)
    for distance in range(1, window + 1):
        same_sentence = sentence_ids[:-distance] == sentence_ids[distance:]  # (N - d,)
        left, right = ids[:-distance][same_sentence], ids[distance:][same_sentence]
        weights = np.full(len(left), 1.0 / distance)
        counts += scipy.sparse.coo_matrix(
            (weights, (left, right)), shape=(vocab_size, vocab_size)
        ).tocsr()
    return (counts + counts.T).tocsr()


def glove_weight(x: torch.Tensor, x_max: float = 100.0, alpha: float = 0.75) -> torch.Tensor:
    """The weighting function ``f(x) = min(1, (x / x_max) ** alpha)``."""
    return torch.clamp(x / x_max, max=1.0) ** alpha


def glove_loss(
    w: torch.Tensor,
    w_context: torch.Tensor,
    b: torch.Tensor,
    b_context: torch.Tensor,
    log_count: torch.Tensor,
    weight: torch.Tensor,
) -> torch.Tensor:
    """Weighted squared error of each entry: vectors ``(B, D)``, everything else ``(B,)``."""
    prediction = (w * w_context).sum(dim=-1) + b + b_context  # (B,)
    return weight * (prediction - log_count) ** 2


class GloVe(nn.Module):
    """Word and context vectors plus biases, initialised uniform in ``[-0.5/D, 0.5/D]``.

    The forward pass looks rows up with sparse gradients: only the batch's rows
    get one, and AdaGrad (which accepts sparse gradients) updates only those
    rows. A dense gradient would give the same result (AdaGrad leaves rows with
    a zero gradient alone) but would sweep the whole ``(V, D)`` tables every step.
    """

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()

        def uniform(*shape: int) -> nn.Parameter:
            return nn.Parameter((torch.rand(*shape) - 0.5) / dim)

        self.w, self.w_context = uniform(vocab_size, dim), uniform(vocab_size, dim)  # (V, D)
        self.b, self.b_context = uniform(vocab_size, 1), uniform(vocab_size, 1)  # (V, 1)

    def forward(
        self, rows: torch.Tensor, cols: torch.Tensor, log_count: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        """Summed GloVe cost of a batch of non-zero entries ``X[rows, cols]``."""
        return glove_loss(
            F.embedding(rows, self.w, sparse=True),  # (B, D)
            F.embedding(cols, self.w_context, sparse=True),
            F.embedding(rows, self.b, sparse=True)[:, 0],  # (B,)
            F.embedding(cols, self.b_context, sparse=True)[:, 0],
            log_count,
            weight,
        ).sum()

    def word_vectors(self) -> np.ndarray:
        """``w + w~``, ``(V, D)``."""
        return (self.w + self.w_context).detach().cpu().numpy()


def train_glove(
    sentences: list[list[str]],
    vector_size: int = 100,
    window: int = 10,
    min_count: int = 5,
    x_max: float = 100.0,
    alpha: float = 0.75,
    epochs: int = 25,
    learning_rate: float = 0.05,
    batch_size: int = 16384,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> KeyedVectors:
    """Count co-occurrences, fit GloVe with AdaGrad; returns gensim-style ``KeyedVectors``."""
    if epochs < 1 or batch_size < 1:
        raise UsageError("epochs and batch_size must be at least 1")
    vocab = build_vocabulary(sentences, min_count)
    counts = cooccurrence_matrix(encode_corpus(sentences, vocab), len(vocab), window).tocoo()
    rows = torch.as_tensor(counts.row, dtype=torch.int64)  # (E,) non-zero entries
    cols = torch.as_tensor(counts.col, dtype=torch.int64)
    values = torch.as_tensor(counts.data, dtype=torch.float32)
    log_counts, weights = torch.log(values), glove_weight(values, x_max, alpha)
    torch.manual_seed(seed)
    model = GloVe(len(vocab), vector_size).to(device)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    with one_thread(), torch.sparse.check_sparse_tensor_invariants(enable=False):
        for epoch in range(epochs):
            order = torch.randperm(len(values), generator=generator)
            bar = tqdm(
                range(0, len(values), batch_size),
                desc=f"GloVe epoch {epoch + 1}/{epochs}",
                disable=not progress,
            )
            loss_sum = 0.0
            for start in bar:
                batch = order[start : start + batch_size]  # (B,) entries of X
                optimizer.zero_grad()
                loss = model(
                    rows[batch].to(device),
                    cols[batch].to(device),
                    log_counts[batch].to(device),
                    weights[batch].to(device),
                )
                loss.backward()
                optimizer.step()
                loss_sum += loss.item()
            bar.set_postfix(loss_per_entry=loss_sum / len(values))
    return to_keyed_vectors(vocab.words, model.word_vectors())
