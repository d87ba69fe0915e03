"""The index in Milvus: dense vectors, BM25 full-text search and hybrid search in one collection.

The embedded index (:mod:`dl2llm.rag.index`) keeps everything in the serving
process: FAISS vectors, BM25 and every chunk's text, one copy per worker. That
is the right default for one machine. When the corpus or the traffic outgrows
it, the index moves to a vector database and the API processes hold no state:
Milvus (Wang et al., 2021, "Milvus: A Purpose-Built Vector Data Management
System") stores the chunks, their vectors and a BM25 sparse vector computed by
the server from the text (a schema ``Function``), and fuses dense and BM25
rankings by reciprocal rank fusion in one ``hybrid_search`` call.

One URI selects where it runs, and the code is the same for each:

- a file path (``milvus.db``): Milvus Lite, the embedded engine of the
  ``milvus-lite`` package, inside this process;
- ``http://host:19530``: a Milvus server or cluster, or ``milvus-lite server``.

:class:`MilvusIndex` offers what retrieval needs (see
:class:`dl2llm.rag.retrieve.SearchIndex`) plus :meth:`~MilvusIndex.add` and
:meth:`~MilvusIndex.delete`; every process pointed at one server sees the same
documents.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from dl2llm.rag.bm25 import english_stopwords
from dl2llm.rag.encoder import Encoder, Progress
from dl2llm.rag.index import chunker_version, corpus_modules, corpus_names, embed_missing
from dl2llm.rag.ingest import MAX_WORDS, Chunk, Document, chunk_document, deduplicate
from dl2llm.rag.retrieve import RRF_K

COLLECTION = "dl2llm_chunks"
TEXT_LIMIT = 65535  # Milvus VARCHAR max_length
INSERT_BATCH = 4096  # rows per insert: fewer, larger segments search much faster
FIELDS = ["doc_id", "anchor", "title", "text"]
BM25_K1, BM25_B = 1.5, 0.75  # as the embedded index's bm25s


class MilvusError(RuntimeError):
    """Milvus is unreachable, or its collection does not fit this project; the message says why."""


SERVER_SCHEMES = ("http://", "https://", "tcp://")


def parse_vector_store(value: str) -> str | None:
    """``--vector-store`` -> the URI ``MilvusClient`` takes, or ``None`` for the embedded index.

    ``faiss`` (the default): FAISS and BM25 in this process. ``milvus://path.db``
    or ``path.db``: Milvus Lite in that file. ``milvus://host:19530`` or
    ``http://host:19530``: a Milvus server. Raises ``ValueError`` with the forms.
    """
    if value == "faiss":
        return None
    rest = value.removeprefix("milvus://")
    if rest.endswith(".db"):
        return str(Path(rest).expanduser())
    if rest.startswith(SERVER_SCHEMES):
        return rest
    if value.startswith("milvus://") and rest and "/" not in rest:
        return f"http://{rest}"
    raise ValueError(
        f"--vector-store {value!r}: use faiss, milvus://<file>.db (Milvus Lite), "
        "or milvus://<host>:<port> / http://<host>:<port> (a Milvus server)"
    )


class MilvusIndex:
    """A Milvus collection of chunks; see the module's docstring."""

    dense = True
    folder = None  # no files of its own: thresholds come from the manifest's source

    def __init__(self, uri: str, dim: int, collection: str = COLLECTION):
        from pymilvus import MilvusClient

        self.uri, self.dim, self.collection = uri, dim, collection
        if not uri.startswith(SERVER_SCHEMES):
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client = MilvusClient(uri)
        except Exception as err:
            raise MilvusError(f"cannot open Milvus at {uri}: {err}") from err
        self._lock = threading.Lock()
        if not self.client.has_collection(collection):
            self._create()
        self.client.load_collection(collection)
        self.manifest = self._read_manifest()

    def _create(self) -> None:
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=True, description="{}")
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
        schema.add_field("anchor", DataType.VARCHAR, max_length=1024)
        schema.add_field("title", DataType.VARCHAR, max_length=4096)
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_LIMIT)
        analyzer = {  # the embedded index's BM25 terms: \w+, lower case, English stop words
            "tokenizer": "standard",
            "filter": ["lowercase", {"type": "stop", "stop_words": sorted(english_stopwords())}],
        }
        schema.add_field(
            "body",
            DataType.VARCHAR,
            max_length=TEXT_LIMIT,
            enable_analyzer=True,
            analyzer_params=analyzer,
        )
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["body"],
                output_field_names=["sparse"],
            )
        )
        indexes = self.client.prepare_index_params()
        indexes.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        indexes.add_index(
            field_name="sparse",
            index_type="SPARSE_INVERTED_INDEX",
            metric_type="BM25",
            params={"bm25_k1": BM25_K1, "bm25_b": BM25_B},
        )
        self.client.create_collection(
            self.collection, schema=schema, index_params=indexes, consistency_level="Strong"
        )

    @property
    def _manifest_collection(self) -> str:
        return f"{self.collection}_manifest"

    def _read_manifest(self) -> dict:
        """What was indexed (the source, the encoder): one row of a collection of its own,
        so that searches need no filter to skip it."""
        if not self.client.has_collection(self._manifest_collection):
            return {}
        rows = self.client.get(self._manifest_collection, ids=[0], output_fields=["text"])
        return json.loads(rows[0]["text"]) if rows else {}

    def write_manifest(self, manifest: dict) -> None:
        """Replace the manifest (see :meth:`_read_manifest`)."""
        name = self._manifest_collection
        if not self.client.has_collection(name):
            self.client.create_collection(name, dimension=2, auto_id=False)
        row = {"id": 0, "vector": [0.0, 0.0], "text": json.dumps(manifest)}
        self.client.upsert(name, [row])
        self.manifest = manifest

    def __len__(self) -> int:
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def _all_chunks(self) -> list[Chunk]:
        iterator = self.client.query_iterator(
            self.collection, filter="", output_fields=FIELDS, batch_size=1000
        )
        chunks = []
        while batch := iterator.next():
            chunks += [_chunk(row) for row in batch]
        iterator.close()
        return chunks

    @cached_property
    def _corpus(self) -> tuple[frozenset[str], list[str]]:
        """``(names, documents)`` from one scan of the collection, kept until an edit here."""
        chunks = self._all_chunks()
        return corpus_names(chunks), sorted({chunk.doc_id for chunk in chunks})

    @property
    def names(self) -> frozenset[str]:
        return self._corpus[0]

    @property
    def modules(self) -> frozenset[str]:
        return corpus_modules(self.documents)

    @property
    def documents(self) -> list[str]:
        """Ids of the indexed documents, sorted (as of this process's last edit)."""
        return self._corpus[1]

    def has_document(self, doc_id: str) -> bool:
        """Whether ``doc_id`` has chunks now, whoever added them."""
        rows = self.client.query(
            self.collection, filter=f"doc_id == {json.dumps(doc_id)}", output_fields=["id"], limit=1
        )
        return bool(rows)

    def forget_corpus_terms(self) -> None:
        """Drop the scanned corpus so it is read again (after an edit)."""
        self.__dict__.pop("_corpus", None)

    def add(
        self,
        documents: Iterable[Document],
        encoder: Encoder,
        max_words: int = MAX_WORDS,
        progress: Progress = False,
        known: dict[str, np.ndarray] | None = None,
    ) -> int:
        """Add (or replace, by ``doc_id``) documents; returns the chunks added.

        ``known``: vectors already computed, by embedding text (an embedded index's
        :meth:`~dl2llm.rag.index.Index.vectors_by_text`), reused instead of encoded.
        """
        documents = list(documents)
        if len(self):  # replacing: drop the old chunks of these documents first
            self.delete([d.doc_id for d in documents])
        seen: set[str] = set()  # as the embedded index: a repeated passage is kept once
        chunks = [c for d in documents for c in deduplicate(chunk_document(d, max_words), seen)]
        if not chunks:
            return 0
        texts = [c.embedding_text() for c in chunks]
        vectors = embed_missing(texts, encoder, known or {}, progress)  # (N, dim)
        rows = [
            {
                "doc_id": c.doc_id,
                "anchor": c.anchor,
                "title": c.title,
                "text": c.text,
                "body": c.embedding_text()[:TEXT_LIMIT],
                "vector": vector.tolist(),
            }
            for c, vector in zip(chunks, vectors, strict=True)
        ]
        with self._lock:
            for start in range(0, len(rows), INSERT_BATCH):
                self.client.insert(self.collection, rows[start : start + INSERT_BATCH])
            self.client.flush(self.collection)  # sealed segments search far faster
        self.forget_corpus_terms()
        return len(rows)

    def fill(
        self,
        documents: Iterable[Document],
        encoder: Encoder,
        source: str,
        progress: Progress,
        known: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Index a corpus into the empty collection, then write the manifest that says so."""
        self.add(documents, encoder, progress=progress, known=known)
        encoder_name = Path(encoder.path).name
        self.write_manifest(
            {"source": source, "encoder": encoder_name, "chunker": chunker_version()}
        )

    def delete(self, doc_ids: Sequence[str]) -> None:
        """Remove documents and their chunks."""
        for doc_id in doc_ids:
            with self._lock:
                self.client.delete(self.collection, filter=f"doc_id == {json.dumps(doc_id)}")
        self.forget_corpus_terms()

    def search_dense(self, query_vectors: np.ndarray, n: int) -> list[list[tuple[int, float]]]:
        results = self.client.search(
            self.collection,
            data=[vector.tolist() for vector in query_vectors],
            anns_field="vector",
            limit=n,
            search_params={"metric_type": "IP"},
        )
        return [[(int(hit["id"]), float(hit["distance"])) for hit in row] for row in results]

    def search_keyword(self, question: str, n: int) -> list[tuple[int, float]]:
        results = self.client.search(
            self.collection,
            data=[question],
            anns_field="sparse",
            limit=n,
            search_params={"metric_type": "BM25"},
        )
        # BM25 is never negative; Milvus Lite reports it negated, as a distance.
        return [(int(hit["id"]), abs(float(hit["distance"]))) for hit in results[0]]

    def search_hybrid(
        self, question: str, query_vector: np.ndarray, n: int, depth: int
    ) -> list[tuple[int, float]]:
        from pymilvus import AnnSearchRequest, RRFRanker

        requests = [
            AnnSearchRequest([query_vector[0].tolist()], "vector", {"metric_type": "IP"}, depth),
            AnnSearchRequest([question], "sparse", {"metric_type": "BM25"}, depth),
        ]
        results = self.client.hybrid_search(self.collection, requests, RRFRanker(RRF_K), limit=n)
        return [(int(hit["id"]), float(hit["distance"])) for hit in results[0]]

    def fetch(self, chunk_ids: Sequence[int]) -> dict[int, Chunk]:
        if not chunk_ids:
            return {}
        rows = self.client.get(self.collection, ids=list(chunk_ids), output_fields=["id", *FIELDS])
        return {int(row["id"]): _chunk(row) for row in rows}

    def close(self) -> None:
        self.client.close()


def _chunk(row: dict) -> Chunk:
    return Chunk(row["doc_id"], row["anchor"], row["title"], row["text"], chunk_id=int(row["id"]))


def ensure_milvus_index(
    uri: str,
    encoder: Encoder,
    documents: Iterable[Document],
    source: str,
    progress: Progress = True,
) -> MilvusIndex:
    """The Milvus collection at ``uri``, filled with ``documents`` when it is empty."""
    index = MilvusIndex(uri, encoder.dim)
    if not index.manifest:
        index.fill(documents, encoder, source, progress)
    return index
