"""The index: dense vectors in FAISS, chunk text and metadata in SQLite, BM25 in memory.

Dense retrieval (Karpukhin et al., 2020, "Dense Passage Retrieval for
Open-Domain Question Answering") embeds every chunk once with a sentence encoder
-- here all-MiniLM-L6-v2 (Reimers & Gurevych, 2019, "Sentence-BERT"), whose
unit-length 384-d vectors make the inner product a cosine similarity -- and at
query time finds the nearest chunks with FAISS (Johnson et al., 2017,
"Billion-scale similarity search with GPUs"). A flat (exact) inner-product index
is fast enough for tens of thousands of chunks; ``IndexIDMap2`` lets us address
vectors by chunk id, so documents can be added and deleted in place.

Sparse retrieval uses BM25 (Robertson & Zaragoza, 2009, "The Probabilistic
Relevance Framework: BM25 and Beyond") from ``bm25s``, which precomputes every
term's weight in every chunk so that a query costs one sparse-matrix product.

On disk an index is one folder::

    index/manifest.json   what was built, with which encoder, how many chunks
    index/chunks.sqlite   documents and chunks (id, path, anchor, title, text)
    index/vectors.faiss   the chunk vectors, keyed by chunk id

Every change -- a build, an added or deleted document -- is made in a staging
folder and published as a new version under the data folder's lock
(:mod:`dl2llm.rag.store`: versioned folders, an atomic pointer, a journal of
uploads), so a killed build leaves the previous index whole and serving, and
every worker process sees the same index.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import replace
from functools import cache, cached_property
from pathlib import Path

import numpy as np

from dl2llm.hardware import available_cores
from dl2llm.io import atomic_write_json
from dl2llm.rag.ingest import (
    MAX_WORDS,
    Chunk,
    Document,
    chunk_document,
    deduplicate,
    discover,
    read_document,
)
from dl2llm.rag.store import (
    INDEX_FOLDER as INDEX_FOLDER,
)
from dl2llm.rag.store import (
    STAGING_PREFIX,
    Journal,
    current_folder,
    exclusive,
    publish,
)

FORMAT_VERSION = 1
MANIFEST, DATABASE, VECTORS = "manifest.json", "chunks.sqlite", "vectors.faiss"
EDIT_KEEPS = ("encoder", "source", "max_words", "chunker")  # what adds and deletes leave as is
ENCODE_BATCH = 32
SHORT_TOKENS = 64  # where Encoder.encode_short cuts a text
SHORT_BATCH = 8  # texts per ONNX batch in Encoder.encode_short
BUILD_COMMAND = "`python capstone/retrieval_augmented_generation.py --rebuild`"
_NAMES = re.compile(r"[a-z_]\w*(?:\.[a-z_]\w*)*")

_SCHEMA = """
CREATE TABLE documents (doc_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, chunks INTEGER NOT NULL);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL, anchor TEXT NOT NULL,
    title TEXT NOT NULL, text TEXT NOT NULL, fingerprint TEXT NOT NULL UNIQUE
);
CREATE INDEX chunks_by_doc ON chunks (doc_id);
"""


class IndexLoadError(RuntimeError):
    """The index is missing, unreadable or inconsistent; the message says how to fix it."""


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

    def encode(self, texts: Sequence[str], progress: Progress = False) -> np.ndarray:
        """``(N, dim)`` float32, L2-normalised (inner product = cosine)."""
        if self.session is not None:
            return self._encode_onnx(texts, self.model.max_seq_length, SHORT_BATCH, progress)
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
        lengths = [len(ids) for ids in self.model.tokenizer(texts, truncation=True)["input_ids"]]
        order = np.argsort(lengths, kind="stable")
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        bar = tqdm(total=len(texts), desc="embedding", unit="chunk") if progress is True else None
        for start in range(0, len(texts), batch):
            rows = order[start : start + batch]
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


@cache
def english_stopwords() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def tokenize(text: str) -> list[str]:
    """BM25 terms: lower-cased word characters, English stop words removed."""
    stopwords = english_stopwords()
    return [t for t in re.findall(r"\w+", text.lower()) if t not in stopwords]


class SparseIndex:
    """BM25 over chunk texts with ``bm25s``: one sparse-matrix product per query.

    ``bm25s`` (Lù, 2024, "BM25S: Orders of magnitude faster lexical search via
    eager sparse scoring") computes every (term, chunk) BM25 weight once, when
    the index is built, so a query sums a few rows of a sparse matrix instead of
    visiting every chunk: milliseconds at 100k chunks. Scores are Lucene's BM25
    as Lucene 8+ writes it: ``idf * tf / (tf + k1 * (1 - b + b * len / avglen))`` with
    ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``, ``k1 = 1.5``, ``b = 0.75``.
    """

    def __init__(self, chunk_ids: Sequence[int], texts: Sequence[str]):
        import bm25s

        self.chunk_ids = np.asarray(chunk_ids, dtype=np.int64)
        self.bm25 = bm25s.BM25()
        self.bm25.index([tokenize(text) or ["\0"] for text in texts], show_progress=False)

    def search(self, query: str, n: int) -> list[tuple[int, float]]:
        """The ``n`` best ``(chunk_id, score)`` pairs, best first, of chunks sharing a term."""
        term_ids = self.bm25.get_tokens_ids(tokenize(query))
        if not term_ids:
            return []
        scores = self.bm25.get_scores_from_ids(term_ids)  # (N,)
        n = min(n, int(np.count_nonzero(scores)))
        best = np.argpartition(-scores, n - 1)[:n] if n else []
        best = sorted(best, key=lambda i: (-scores[i], i))
        return [(int(self.chunk_ids[i]), float(scores[i])) for i in best]


class Index:
    """A loaded index: chunk metadata, the FAISS vectors and a BM25 model."""

    def __init__(self, folder: Path | None, manifest: dict, chunks: dict[int, Chunk], vectors):
        self.folder = folder
        self.manifest = manifest
        self.chunks = chunks
        self.vectors = vectors
        ids = list(chunks)
        self.sparse = SparseIndex(ids, [c.embedding_text() for c in chunks.values()])

    @classmethod
    def provisional(
        cls, documents: Iterable[Document], source: str, max_words: int = MAX_WORDS
    ) -> Index:
        """Chunks and BM25 with no vectors, in memory: seconds to make, so a first start
        can answer (by BM25) while :func:`build_index` embeds the corpus."""
        seen: set[str] = set()
        chunks: dict[int, Chunk] = {}
        for document in documents:
            for chunk in deduplicate(chunk_document(document, max_words), seen):
                chunk_id = len(chunks)
                chunks[chunk_id] = replace(chunk, chunk_id=chunk_id)
        manifest = {"format": FORMAT_VERSION, "source": source, "chunks": len(chunks)}
        return cls(None, manifest, chunks, None)

    @property
    def dense(self) -> bool:
        """False for a :meth:`provisional` index (BM25 only)."""
        return self.vectors is not None

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def documents(self) -> list[str]:
        """Ids of the indexed documents, sorted."""
        return sorted({chunk.doc_id for chunk in self.chunks.values()})

    @cached_property
    def names(self) -> frozenset[str]:
        """Every word and dotted name the corpus mentions (see :func:`corpus_names`)."""
        return corpus_names(self.chunks.values())

    @cached_property
    def modules(self) -> frozenset[str]:
        """Modules with a page of their own (see :func:`corpus_modules`)."""
        return corpus_modules(self.documents)

    def fetch(self, chunk_ids: Sequence[int]) -> dict[int, Chunk]:
        """``{chunk_id: chunk}`` for ``chunk_ids``."""
        return {chunk_id: self.chunks[chunk_id] for chunk_id in chunk_ids}

    def search_keyword(self, question: str, n: int) -> list[tuple[int, float]]:
        """BM25: the ``n`` best ``(chunk_id, score)`` pairs."""
        return self.sparse.search(question, n)

    def search_hybrid(
        self, question: str, query_vector: np.ndarray, n: int, depth: int
    ) -> list[tuple[int, float]]:
        """Dense and BM25 lists ``depth`` deep, fused by reciprocal rank (see
        :func:`dl2llm.rag.retrieve.reciprocal_rank_fusion`): the ``n`` best pairs."""
        from dl2llm.rag.retrieve import reciprocal_rank_fusion

        dense = self.search_dense(query_vector, depth)[0]
        sparse = self.sparse.search(question, depth)
        return reciprocal_rank_fusion([[i for i, _ in dense], [i for i, _ in sparse]])[:n]

    @classmethod
    def load(cls, data_dir: str | Path) -> Index:
        """Read ``<data_dir>/index``; raises :class:`IndexLoadError` with the fix."""
        import faiss

        folder = current_folder(data_dir)
        if not (folder / MANIFEST).is_file():
            raise IndexLoadError(f"no index in {folder}: build it with {BUILD_COMMAND}")
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            if manifest.get("format") != FORMAT_VERSION:
                raise ValueError(f"format {manifest.get('format')} != {FORMAT_VERSION}")
            chunks = _read_chunks(folder / DATABASE)
            vectors = faiss.read_index(str(folder / VECTORS))
        except Exception as err:  # any damage: JSON, SQLite or FAISS
            raise IndexLoadError(
                f"the index in {folder} is unreadable ({type(err).__name__}: {err}); "
                f"rebuild it with {BUILD_COMMAND}"
            ) from err
        if vectors.ntotal != len(chunks):
            raise IndexLoadError(
                f"the index in {folder} is inconsistent ({vectors.ntotal} vectors for "
                f"{len(chunks)} chunks); rebuild it with {BUILD_COMMAND}"
            )
        return cls(folder, manifest, chunks, vectors)

    def vectors_by_text(self) -> dict[str, np.ndarray]:
        """``{embedding text: vector}`` of every chunk, for a rebuild to reuse."""
        return {
            chunk.embedding_text(): self.vectors.reconstruct(chunk_id)
            for chunk_id, chunk in self.chunks.items()
        }

    def search_dense(self, query_vectors: np.ndarray, n: int) -> list[list[tuple[int, float]]]:
        """For each query ``(Q, dim)`` the ``n`` nearest ``(chunk_id, cosine)`` pairs."""
        scores, ids = self.vectors.search(query_vectors, min(n, len(self)))  # (Q, n) each
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]


def corpus_names(chunks: Iterable[Chunk]) -> frozenset[str]:
    """Every word and dotted name the chunks mention, lower case, with the tails of dotted
    names and API ids (``os.path.join`` -> ``path.join``, ``join``)."""
    names: set[str] = set()
    for chunk in chunks:
        for name in _NAMES.findall(f"{chunk.anchor} {chunk.title} {chunk.text}".lower()):
            parts = name.split(".")
            names.update(".".join(parts[i:]) for i in range(len(parts)))
    return frozenset(names)


def corpus_modules(documents: Iterable[str]) -> frozenset[str]:
    """Modules with a page of their own, lower case: ``library/os.path.rst`` -> ``os.path``."""
    pages = (doc.removeprefix("library/").removesuffix(".rst") for doc in documents)
    return frozenset(page.lower() for page in pages if "/" not in page)


def _read_chunks(database: Path) -> dict[int, Chunk]:
    if not database.is_file():
        raise FileNotFoundError(f"{database.name} is missing")
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT id, doc_id, anchor, title, text FROM chunks ORDER BY id"
        ).fetchall()
    finally:
        connection.close()
    return {id_: Chunk(*fields, chunk_id=id_) for id_, *fields in rows}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _new_vectors(dim: int):
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _insert(
    connection: sqlite3.Connection,
    vectors,
    documents: Iterable[Document],
    encoder: Encoder,
    max_words: int,
    progress: Progress,
    known: dict[str, np.ndarray] | None = None,
) -> int:
    """Chunk, deduplicate, embed and store ``documents``; returns the chunks added.

    ``known`` maps embedding texts to vectors already computed (by the index
    being rebuilt): those chunks are not encoded again.
    """
    seen = {row[0] for row in connection.execute("SELECT fingerprint FROM chunks")}
    next_id = _next_chunk_id(connection)
    new: list[tuple[int, Chunk]] = []
    for document in documents:
        chunks = list(deduplicate(chunk_document(document, max_words), seen))
        connection.execute(
            "INSERT INTO documents VALUES (?, ?, ?)",
            (document.doc_id, _sha256(document.text), len(chunks)),
        )
        for chunk in chunks:
            new.append((next_id, chunk))
            next_id += 1
    connection.executemany(
        "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)",
        [(i, c.doc_id, c.anchor, c.title, c.text, c.fingerprint) for i, c in new],
    )
    if new:
        texts = [c.embedding_text() for _, c in new]
        embeddings = embed_missing(texts, encoder, known or {}, progress)
        vectors.add_with_ids(embeddings, np.array([i for i, _ in new], dtype=np.int64))
    return len(new)


def _next_chunk_id(connection: sqlite3.Connection) -> int:
    """One past the largest id ever given, deleted chunks' included.

    Ids are never reused, so a request that raced an edit cannot find another
    chunk's text under an old id. (Indexes made before ``AUTOINCREMENT`` fall
    back to ``MAX(id)``.)
    """
    highest = connection.execute("SELECT MAX(id) FROM chunks").fetchone()[0]
    try:
        row = connection.execute("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").fetchone()
    except sqlite3.OperationalError:
        row = None
    return max(-1 if highest is None else highest, row[0] if row else -1) + 1


def embed_missing(
    texts: list[str], encoder: Encoder, known: dict[str, np.ndarray], progress: Progress
) -> np.ndarray:
    """``(N, dim)`` vectors of ``texts``, encoding only those ``known`` lacks."""
    embeddings = np.empty((len(texts), encoder.dim), dtype=np.float32)
    missing = [i for i, text in enumerate(texts) if text not in known]
    if missing:
        embeddings[missing] = encoder.encode([texts[i] for i in missing], progress)
    for i, text in enumerate(texts):
        if text in known:
            embeddings[i] = known[text]
    return embeddings


def _write_manifest(folder: Path, connection: sqlite3.Connection, vectors, extra: dict) -> dict:
    manifest = {
        "format": FORMAT_VERSION,
        "documents": connection.execute("SELECT COUNT(*) FROM documents").fetchone()[0],
        "chunks": int(vectors.ntotal),
        "dim": int(vectors.d),
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
    }
    atomic_write_json(folder / MANIFEST, manifest)
    return manifest


def _save(folder: Path, connection: sqlite3.Connection, vectors) -> None:
    import faiss

    connection.commit()
    connection.close()
    faiss.write_index(vectors, str(folder / VECTORS))


def _staging(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=data_dir, prefix=STAGING_PREFIX))


def same_encoder(index: Index, encoder: Encoder) -> bool:
    """Whether ``index`` was embedded by ``encoder``'s model (its vectors can be reused)."""
    return index.manifest.get("encoder") == Path(encoder.path).name


def chunker_version() -> str:
    """A short hash of the ingestion code: an index chunked by other code is stale.

    :func:`dl2llm.rag.ensure_index` rebuilds a stale index of the default corpus
    instead of serving chunks the current code would not make.
    """
    from dl2llm.rag import ingest

    return hashlib.sha256(inspect.getsource(ingest).encode()).hexdigest()[:12]


def build_index(
    documents: Iterable[Document],
    data_dir: str | Path,
    encoder: Encoder,
    source: str = "",
    max_words: int = MAX_WORDS,
    progress: Progress = True,
    reuse: Index | None = None,
) -> Index:
    """Build a fresh index from ``documents`` and move it into ``<data_dir>/index``.

    ``reuse``: an index with the same encoder whose vectors of unchanged chunks
    are copied instead of recomputed (a rebuild after a chunking change).
    """
    data_dir = Path(data_dir)
    with exclusive(data_dir):
        staging = _staging(data_dir)
        try:
            _build_into(staging, documents, encoder, source, max_words, progress, reuse)
            publish(data_dir, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Index.load(data_dir)


def _build_into(
    staging: Path,
    documents: Iterable[Document],
    encoder: Encoder,
    source: str,
    max_words: int,
    progress: Progress,
    reuse: Index | None,
) -> None:
    connection = sqlite3.connect(staging / DATABASE)
    connection.executescript(_SCHEMA)
    vectors = _new_vectors(encoder.dim)
    known = reuse.vectors_by_text() if reuse is not None else None
    _insert(connection, vectors, documents, encoder, max_words, progress, known)
    extra = {
        "encoder": Path(encoder.path).name,
        "source": source,
        "max_words": max_words,
        "chunker": chunker_version(),
    }
    _write_manifest(staging, connection, vectors, extra)
    _save(staging, connection, vectors)


def read_corpus(root: str | Path, suffixes: Iterable[str] | None = None) -> list[Document]:
    """Every supported document under ``root`` (see :func:`dl2llm.rag.ingest.discover`)."""
    root = Path(root)
    files = discover(root) if suffixes is None else discover(root, suffixes)
    return [read_document(path, root) for path in files]


def _edit(data_dir: Path, change) -> Index:
    """Copy the current version, apply ``change(connection, vectors)``, publish the copy."""
    import faiss

    with exclusive(data_dir):
        current = Index.load(data_dir).folder  # refuse to edit a damaged index
        staging = _staging(Path(data_dir))
        try:
            shutil.copytree(current, staging, dirs_exist_ok=True)
            connection = sqlite3.connect(staging / DATABASE)
            vectors = faiss.read_index(str(staging / VECTORS))
            change(connection, vectors)
            manifest = json.loads((staging / MANIFEST).read_text())
            keep = {k: manifest[k] for k in EDIT_KEEPS if k in manifest}
            _write_manifest(staging, connection, vectors, keep)
            _save(staging, connection, vectors)
            publish(data_dir, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Index.load(data_dir)


def _delete_rows(connection: sqlite3.Connection, vectors, doc_ids: Iterable[str]) -> None:
    for doc_id in doc_ids:
        rows = connection.execute("SELECT id FROM chunks WHERE doc_id = ?", (doc_id,))
        ids = [row[0] for row in rows]
        if ids:
            vectors.remove_ids(np.array(ids, dtype=np.int64))
        connection.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        connection.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))


def add_documents(
    data_dir: str | Path,
    documents: Sequence[Document],
    encoder: Encoder,
    progress: Progress = False,
) -> Index:
    """Add (or replace, by ``doc_id``) documents, journaled first; returns the new index."""
    with exclusive(data_dir):
        Index.load(data_dir)  # refuse before journaling when there is no index to edit
        Journal(data_dir).put(documents)
        return _add(Path(data_dir), documents, encoder, progress)


def delete_documents(data_dir: str | Path, doc_ids: Sequence[str]) -> Index:
    """Remove documents (and their chunks), journaled first; returns the new index."""
    with exclusive(data_dir):
        Index.load(data_dir)
        Journal(data_dir).delete(doc_ids)
        return _delete(Path(data_dir), doc_ids)


def _add(
    data_dir: Path, documents: Sequence[Document], encoder: Encoder, progress: Progress
) -> Index:
    max_words = Index.load(data_dir).manifest.get("max_words", MAX_WORDS)

    def change(connection, vectors):
        _delete_rows(connection, vectors, [d.doc_id for d in documents])
        _insert(connection, vectors, documents, encoder, max_words, progress)

    return _edit(data_dir, change)


def _delete(data_dir: Path, doc_ids: Sequence[str]) -> Index:
    def change(connection, vectors):
        _delete_rows(connection, vectors, doc_ids)

    return _edit(data_dir, change)


def apply_journal(data_dir: str | Path, encoder: Encoder, index: Index | None = None) -> Index:
    """The current index with every journaled edit it lacks re-applied.

    Such edits exist only after a crash between the journal commit and the
    pointer swap (:mod:`dl2llm.rag.store`); they were never acknowledged, but
    the journal is the record, so the index is brought up to it. ``index``: the
    current version, already loaded.
    """
    data_dir = Path(data_dir)
    with exclusive(data_dir):
        if index is None or index.folder != current_folder(data_dir):
            index = Index.load(data_dir)
        with closing(sqlite3.connect(index.folder / DATABASE)) as connection:
            stored = dict(connection.execute("SELECT doc_id, sha256 FROM documents"))
        edits = Journal(data_dir).edits()
        missing = [
            d for d in edits.values() if d is not None and stored.get(d.doc_id) != _sha256(d.text)
        ]
        removed = [doc_id for doc_id, d in edits.items() if d is None and doc_id in stored]
        if missing:
            index = _add(data_dir, missing, encoder, progress=False)
        if removed:
            index = _delete(data_dir, removed)
        return index
