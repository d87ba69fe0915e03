"""Trained word vectors as gensim ``KeyedVectors``.

Every model here (ours and gensim's) returns the same container, so
evaluation, nearest neighbours and later lessons (the week 5 WEAT bias audit)
treat them alike: ``kv.vectors`` is ``(V, D)``, ``kv.index_to_key[i]`` is the
word of row ``i`` (most frequent first) and ``kv.most_similar("king")`` ranks
neighbours by cosine similarity.
"""

from __future__ import annotations

import numpy as np
from gensim.models import KeyedVectors


def to_keyed_vectors(words: list[str], vectors: np.ndarray) -> KeyedVectors:
    """Wrap a ``(V, D)`` matrix whose row ``i`` is the vector of ``words[i]``."""
    if len(words) != len(vectors):
        raise ValueError(f"{len(words)} words but {len(vectors)} vectors")
    keyed = KeyedVectors(vector_size=vectors.shape[1], dtype=np.float32)
    keyed.add_vectors(words, vectors.astype(np.float32))
    return keyed
