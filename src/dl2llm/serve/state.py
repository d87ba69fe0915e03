"""What a worker holds: the RAG pipeline, loaded in the background.

Loading takes seconds (models) to minutes (a first index build), so the worker
starts answering ``/health`` at once and loads in a thread; ``/ready`` turns
true only when the index, the encoder and the generator are all in memory. A
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
from dl2llm.rag import ensure_index, load_pipeline, stale_bundled
from dl2llm.rag.generate import use_one_thread
from dl2llm.rag.index import (
    INDEX_FOLDER,
    Encoder,
    Index,
    IndexLoadError,
    add_documents,
    delete_documents,
    shared_encoder,
)
from dl2llm.rag.ingest import Document
from dl2llm.rag.pipeline import RAGPipeline
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
        self._edit_lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self.pipeline is not None

    def start_loading(self) -> threading.Thread:
        """Load everything in a daemon thread (see :meth:`load`)."""
        thread = threading.Thread(target=self.load, name="dl2llm-loader", daemon=True)
        thread.start()
        return thread

    def load(self) -> None:
        """Index (built on first start if allowed), encoder and generator; errors are kept."""
        started = time.perf_counter()
        try:
            index = self._load_index()
            use_one_thread()  # answering: one thread per worker is fastest
            self.phase = "loading the generator"
            pipeline = load_pipeline(
                index,
                self.encoder,
                self.settings.llm,
                self.settings.generator,
                self.settings.max_new_tokens,
                adapter=self.settings.adapter,
            )
            self.phase = "warming up"
            pipeline.warm_up()
            self.pipeline = pipeline  # ready only once warm
            self.phase = "ready"
        except (AssetError, IndexLoadError) as err:
            self._fail(str(err))
        except Exception as err:  # keep serving /health and /ready with the reason
            traceback.print_exc()
            self._fail(f"{type(err).__name__}: {err}")
        self.load_seconds = time.perf_counter() - started

    def _load_index(self) -> Index:
        """An existing index is read before the encoder loads, so damage shows at once.

        A missing index (first start) is built, and a stale one of the bundled
        docs rebuilt, with every core: the port is already open meanwhile.
        """
        data_dir, index = self.settings.data_dir, None
        if (Path(data_dir) / INDEX_FOLDER).exists() or not self.settings.build_missing:
            self.phase = "loading the index"
            index = Index.load(data_dir)
        self.phase = "loading the encoder"
        self.encoder = shared_encoder(self.settings.encoder, self.settings.onnx_queries)
        if index is not None and not (self.settings.build_missing and stale_bundled(index)):
            return index
        self.phase = "building the index (first start: a few minutes)"
        torch.set_num_threads(os.cpu_count() or 1)
        return ensure_index(data_dir, self.encoder, self.settings.docs)

    def _fail(self, message: str) -> None:
        self.error = message
        self.phase = "failed"
        print(f"dl2llm service not ready: {message}", flush=True)

    def add_documents(self, documents: Sequence[Document]) -> int:
        """Add or replace documents; the new index serves from the next request."""
        with self._edit_lock:
            index = add_documents(self.settings.data_dir, documents, self.encoder)
            self._swap(index)
            added = {d.doc_id for d in documents}
            return sum(1 for chunk in index.chunks.values() if chunk.doc_id in added)

    def delete_document(self, doc_id: str) -> bool:
        """Remove a document; ``False`` when it is not indexed."""
        with self._edit_lock:
            if doc_id not in set(self.pipeline.retriever.index.documents):
                return False
            self._swap(delete_documents(self.settings.data_dir, [doc_id]))
            return True

    def _swap(self, index) -> None:
        self.pipeline.retriever.index = index
