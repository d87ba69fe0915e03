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
The encoder is :mod:`dl2llm.rag.encoder`; BM25 is :mod:`dl2llm.rag.bm25`.

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
from collections.abc import Iterable, Sequence
from dataclasses import replace
from functools import cached_property
from pathlib import Path

import numpy as np

from dl2llm.io import atomic_write_json
from dl2llm.rag.bm25 import SparseIndex
from dl2llm.rag.encoder import Encoder, Progress
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
    current_folder,
    exclusive,
    publish,
)

FORMAT_VERSION = 1
MANIFEST, DATABASE, VECTORS = "manifest.json", "chunks.sqlite", "vectors.faiss"
EDIT_KEEPS = ("encoder", "source", "max_words", "chunker")  # what adds and deletes leave as is
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


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _new_vectors(dim: int):
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def insert_documents(
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
            (document.doc_id, text_sha256(document.text), len(chunks)),
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


def write_manifest(folder: Path, connection: sqlite3.Connection, vectors, extra: dict) -> dict:
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


def save_folder(folder: Path, connection: sqlite3.Connection, vectors) -> None:
    import faiss

    connection.commit()
    connection.close()
    faiss.write_index(vectors, str(folder / VECTORS))


def staging_folder(data_dir: Path) -> Path:
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
        staging = staging_folder(data_dir)
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
    insert_documents(connection, vectors, documents, encoder, max_words, progress, known)
    extra = {
        "encoder": Path(encoder.path).name,
        "source": source,
        "max_words": max_words,
        "chunker": chunker_version(),
    }
    write_manifest(staging, connection, vectors, extra)
    save_folder(staging, connection, vectors)


def read_corpus(root: str | Path, suffixes: Iterable[str] | None = None) -> list[Document]:
    """Every supported document under ``root`` (see :func:`dl2llm.rag.ingest.discover`)."""
    root = Path(root)
    files = discover(root) if suffixes is None else discover(root, suffixes)
    return [read_document(path, root) for path in files]
