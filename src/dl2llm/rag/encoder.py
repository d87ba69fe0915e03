"""The sentence encoder of retrieval: all-MiniLM-L6-v2, through PyTorch or ONNX Runtime.

Dense retrieval (Karpukhin et al., 2020) embeds every chunk once and each
question at query time with the same encoder: here all-MiniLM-L6-v2 (Reimers &
Gurevych, 2019, "Sentence-BERT"), whose unit-length 384-d vectors make the
inner product a cosine similarity. On a CPU the same network runs faster
through ONNX Runtime, in batches of texts of similar length.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import numpy as np

from dl2llm.hardware import available_cores

ENCODE_BATCH = 32
SHORT_TOKENS = 64  # where Encoder.encode_short cuts a text
SHORT_BATCH = 8  # texts per ONNX batch in Encoder.encode_short

Progress = bool | Callable[[int, int], None]  # True: a tqdm bar; a function gets (done, total)


class Encoder:
    """all-MiniLM-L6-v2 through ``sentence-transformers``: text -> unit vectors ``(N, 384)``.

    With ``onnx=True`` the same encoder also runs through ONNX Runtime on every
    core (exported once and cached, see :func:`query_encoder_onnx`): the same
    vectors to ~1e-6, and faster on a CPU (``benchmarks/bench_rag.py`` for queries,
    ``benchmarks/bench_first_start.py`` for builds). Texts go in batches of
    similar length (sorted by tokens), so a short text is not padded to the
    longest in the corpus.
    """

    def __init__(self, name_or_path: str | None = None, device: str = "cpu", onnx: bool = False):
        from sentence_transformers import SentenceTransformer

        from dl2llm.models import encoder_path

        self.path = encoder_path(name_or_path)
        self.model = SentenceTransformer(self.path, device=device)
        self.dim = self.model.get_embedding_dimension()
        self.session = query_encoder_onnx(self.model, self.path) if onnx else None
        # A fast tokenizer keeps its padding and truncation settings between calls, so two
        # threads tokenizing at once can get each other's (ragged ids); ONNX itself is safe.
        self.tokenizer_lock = threading.Lock()

    def encode(self, texts: Sequence[str], progress: Progress = False) -> np.ndarray:
        """``(N, dim)`` float32, L2-normalised (inner product = cosine)."""
        if self.session is not None:
            return self._encode_onnx(texts, self.model.max_seq_length, SHORT_BATCH, progress)
        with self.tokenizer_lock:  # sentence-transformers tokenizes inside encode
            vectors = self.model.encode(
                list(texts),
                batch_size=ENCODE_BATCH,
                normalize_embeddings=True,
                show_progress_bar=progress is True,
                convert_to_numpy=True,
            )
        if callable(progress):
            progress(len(texts), len(texts))
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def encode_query(self, text: str) -> np.ndarray:
        """``(1, dim)``: one query, through ONNX Runtime when it is enabled."""
        return self.encode_short([text], self.model.max_seq_length)

    def encode_short(self, texts: Sequence[str], max_tokens: int = SHORT_TOKENS) -> np.ndarray:
        """``(N, dim)``: a few short texts (a query, candidate sentences), cut at ``max_tokens``.

        The cut keeps a code listing from making its batch slow.
        """
        if self.session is None:
            return self.encode([" ".join(text.split()[:max_tokens]) for text in texts])
        return self._encode_onnx(texts, max_tokens, SHORT_BATCH)

    def _encode_onnx(
        self, texts: Sequence[str], max_tokens: int, batch: int, progress: Progress = False
    ) -> np.ndarray:
        """ONNX Runtime in length-sorted batches: similar lengths share a batch, less padding."""
        from tqdm.auto import tqdm

        texts = list(texts)
        with self.tokenizer_lock:
            ids = self.model.tokenizer(texts, truncation=True)["input_ids"]
        lengths = [len(row) for row in ids]
        order = np.argsort(lengths, kind="stable")
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        bar = tqdm(total=len(texts), desc="embedding", unit="chunk") if progress is True else None
        for start in range(0, len(texts), batch):
            rows = order[start : start + batch]
            with self.tokenizer_lock:
                inputs = self.model.tokenizer(
                    [texts[i] for i in rows],
                    truncation=True,
                    max_length=max_tokens,
                    padding=True,
                    return_tensors="np",
                )
            feed = {name: inputs[name].astype(np.int64) for name in ONNX_INPUTS}
            vectors[rows] = self.session.run(None, feed)[0]  # (b, dim)
            if bar is not None:
                bar.update(len(rows))
            elif callable(progress):
                progress(start + len(rows), len(texts))
        if bar is not None:
            bar.close()
        return vectors


ONNX_INPUTS = ("input_ids", "attention_mask")


def query_encoder_onnx(model, model_path: str | Path):
    """An ONNX Runtime session for ``model`` on every core this process may use, exported on
    first use and cached.

    The file lives under ``<DL2LLM_HOME>/onnx/query-encoder/`` named by a hash of
    the model folder and the torch version, so a changed model or exporter makes
    a new one. The export (:func:`dl2llm.efficiency.onnx_export.export_onnx`) is
    atomic: a killed one leaves no half-written file.
    """
    import torch

    from dl2llm import paths
    from dl2llm.efficiency.onnx_export import SentenceEncoder, export_onnx, ort_session

    key = hashlib.sha256(f"{Path(model_path).resolve()}|{torch.__version__}".encode()).hexdigest()
    path = paths.home() / "onnx" / "query-encoder" / f"{key[:16]}.onnx"
    if not path.is_file():
        example = model.tokenizer(["an example query", "two"], padding=True, return_tensors="pt")
        bert = SentenceEncoder(model[0].auto_model).eval()
        export_onnx(bert, {name: example[name] for name in ONNX_INPUTS}, path, "sentence_vector")
    return ort_session(path, threads=available_cores())


@cache
def shared_encoder(name_or_path: str | None = None, onnx: bool = False) -> Encoder:
    """One :class:`Encoder` per model, backend and process (it is read-only once loaded)."""
    return Encoder(name_or_path, onnx=onnx)
