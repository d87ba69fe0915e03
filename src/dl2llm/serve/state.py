"""What a worker holds: the RAG pipeline, loaded in the background.

Loading takes seconds (models) to minutes (a first index build), so the worker
starts answering ``/health`` at once and loads in a thread; ``/ready`` turns
true only when the index, the encoder and the generator are all in memory, and
reports the phase and the build's progress meanwhile. During a first start's
build, questions are answered by BM25 (labelled ``"retrieval": "bm25"``). A
failure -- a corrupt index, a missing model -- is kept as a message for
``/ready`` to show, and the worker stays up: a supervisor that restarts on
exit would only crash-loop on a problem that needs a person.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

import torch

from dl2llm.assets import AssetError
from dl2llm.rag import calibrated, corpus_documents, load_pipeline, stale_bundled
from dl2llm.rag.edits import add_documents, apply_journal, delete_documents
from dl2llm.rag.encoder import Encoder, shared_encoder
from dl2llm.rag.generate import use_one_thread
from dl2llm.rag.index import INDEX_FOLDER, Index, IndexLoadError, build_index, same_encoder
from dl2llm.rag.ingest import Document
from dl2llm.rag.milvus import MilvusError, MilvusIndex
from dl2llm.rag.pipeline import RAGPipeline, load_thresholds
from dl2llm.rag.store import Journal, current_version, exclusive, recover
from dl2llm.serve.settings import Settings


class ServiceState:
    """The pipeline and its loading status, shared by the request handlers."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.pipeline: RAGPipeline | None = None
        self.encoder: Encoder | None = None
        self.error: str | None = None
        self.phase = "starting"
        self.load_seconds: float | None = None
        self.version: str | None = None  # the index version in memory (see refresh)
        self.progress: dict | None = None  # of a first start's index build
        self.milvus: MilvusIndex | None = None  # the index, when it lives in Milvus
        self._reload_lock = threading.Lock()

    @property
    def ready(self) -> bool:
        """Fully loaded: the dense index, the encoder and the generator."""
        return self.phase == "ready"

    @property
    def answering(self) -> bool:
        """Questions get answers (by BM25 alone while a first start builds the index)."""
        return self.pipeline is not None

    def start_loading(self) -> threading.Thread:
        """Load everything in a daemon thread (see :meth:`load`)."""
        thread = threading.Thread(target=self.load, name="dl2llm-loader", daemon=True)
        thread.start()
        return thread

    def load(self) -> None:
        """Index (built on first start if allowed), encoder and generator; errors are kept.

        When the index must be built, questions are answered meanwhile: from the
        old index when one exists (a rebuild), else by BM25 over the chunks
        (:meth:`~dl2llm.rag.index.Index.provisional`), each answer labelled.
        """
        started = time.perf_counter()
        try:
            if self.settings.vector_store:
                self._load_milvus()
                self.phase = "ready"
                return
            data_dir = self.settings.data_dir
            recover(data_dir)
            index = None
            if (Path(data_dir) / INDEX_FOLDER).exists() or not self.settings.build_missing:
                self.phase = "loading the index"
                index = Index.load(data_dir)
            self.phase = "loading the encoder"
            self.encoder = shared_encoder(self.settings.encoder, self.settings.onnx_queries)
            stale = index is not None and self.settings.build_missing and stale_bundled(index)
            if index is not None and not stale:
                index = apply_journal(data_dir, self.encoder, index)
                self._answer_with(index, current_version(data_dir))
            else:
                documents, source = self._documents(stale)
                meanwhile = index or Index.provisional(documents, source)
                self._answer_with(meanwhile, current_version(data_dir))
                reuse = index if stale and same_encoder(index, self.encoder) else None
                self._swap(self._build(documents, source, reuse), current_version(data_dir))
            self.phase = "ready"
        except (AssetError, IndexLoadError, MilvusError) as err:
            self._fail(str(err))
        except Exception as err:  # keep serving /health and /ready with the reason
            traceback.print_exc()
            self._fail(f"{type(err).__name__}: {err}")
        finally:
            self.load_seconds = time.perf_counter() - started

    def _load_milvus(self) -> None:
        """The index in Milvus (``settings.vector_store``); an empty collection is filled
        from the corpus first, answering by BM25 meanwhile."""
        self.phase = "loading the encoder"
        self.encoder = shared_encoder(self.settings.encoder, self.settings.onnx_queries)
        self.phase = "connecting to Milvus"
        self.milvus = MilvusIndex(self.settings.vector_store, self.encoder.dim)
        if self.milvus.manifest:
            self._answer_with(self.milvus, None)
            return
        documents, source = self._documents(stale=False)
        self._answer_with(Index.provisional(documents, source), None)
        self.phase = "filling the Milvus collection (answering from BM25 meanwhile)"
        self.milvus.fill(documents, self.encoder, source, progress=self._progress)
        self._swap(self.milvus, None)

    def _documents(self, stale: bool) -> tuple[list[Document], str]:
        self.phase = "reading the documents"
        documents, source = corpus_documents(None if stale else self.settings.docs)
        return Journal(self.settings.data_dir).apply(documents), source

    def _answer_with(self, index: Index, version: str | None) -> None:
        use_one_thread()  # answering: one torch thread per request; requests run in parallel
        self.phase = "loading the generator"
        pipeline = load_pipeline(
            index,
            self.encoder,
            self.settings.llm,
            self.settings.generator,
            self.settings.max_new_tokens,
            adapter=self.settings.adapter,
            llm_url=self.settings.llm_url,
        )
        self.phase = "warming up"
        pipeline.warm_up()
        self.pipeline, self.version = pipeline, version  # answers only once warm

    def _build(self, documents: list[Document], source: str, reuse: Index | None) -> Index:
        """Build the index with every core, once however many workers start together."""
        data_dir = self.settings.data_dir
        self.phase = "waiting for another worker's build"
        with exclusive(data_dir):
            built = _built_by_another(data_dir, reuse)
            if built is not None:
                return apply_journal(data_dir, self.encoder, built)
            self.phase = "building the dense index (answering from " + (
                "the previous index meanwhile)" if reuse else "BM25 meanwhile)"
            )
            torch.set_num_threads(os.cpu_count() or 1)
            try:
                index = build_index(
                    documents, data_dir, self.encoder, source, progress=self._progress, reuse=reuse
                )
            finally:
                use_one_thread()
            self.phase = "calibrating the refusal threshold"
            return calibrated(index, self.encoder)

    def _progress(self, done: int, total: int) -> None:
        self.progress = {"done": done, "total": total, "percent": round(100 * done / total, 1)}

    def _fail(self, message: str) -> None:
        self.error = message
        self.phase = "failed"
        print(f"dl2llm service not ready: {message}", flush=True)

    def refresh(self) -> RAGPipeline:
        """The pipeline over the current version, reloaded when another worker changed it.

        One ``readlink`` per request; a reload (seconds) happens once per change,
        in the first request that sees it, so every worker answers from the index
        the last acknowledged edit made. (Milvus holds its own state: nothing to do.)
        """
        if self.milvus is not None:
            return self.pipeline
        if current_version(self.settings.data_dir) != self.version:
            with self._reload_lock:
                version = current_version(self.settings.data_dir)
                if version != self.version:
                    self._swap(Index.load(self.settings.data_dir), version)
        return self.pipeline

    def add_documents(self, documents: Sequence[Document]) -> int:
        """Add or replace documents; the new index serves from the next request."""
        if self.milvus is not None:
            return self.milvus.add(documents, self.encoder)
        data_dir = self.settings.data_dir
        with exclusive(data_dir):
            index = add_documents(data_dir, documents, self.encoder)
            self._swap(index, current_version(data_dir))
            added = {d.doc_id for d in documents}
            return sum(1 for chunk in index.chunks.values() if chunk.doc_id in added)

    def delete_document(self, doc_id: str) -> bool:
        """Remove a document; ``False`` when it is not indexed."""
        if self.milvus is not None:
            if not self.milvus.has_document(doc_id):
                return False
            self.milvus.delete([doc_id])
            return True
        data_dir = self.settings.data_dir
        with exclusive(data_dir):
            if doc_id not in set(self.refresh().retriever.index.documents):
                return False
            self._swap(delete_documents(data_dir, [doc_id]), current_version(data_dir))
            return True

    def _swap(self, index: Index, version: str | None) -> None:
        pipeline = self.pipeline
        pipeline.min_confidence, pipeline.min_evidence = load_thresholds(index)
        pipeline.retriever.index = index
        self.version = version


def _built_by_another(data_dir: str, replaced: Index | None) -> Index | None:
    """The index another worker built while this one waited for the lock, if any."""
    if not (Path(data_dir) / INDEX_FOLDER).exists():
        return None
    index = Index.load(data_dir)
    rebuilt = replaced is None or index.folder != replaced.folder
    return index if rebuilt and not stale_bundled(index) else None
