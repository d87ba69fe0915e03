"""Adding and deleting documents in a built index: journaled first, published as a version.

An edit never changes the index being served. Under the data folder's lock
(:func:`dl2llm.rag.store.exclusive`) the upload or deletion is committed to the
journal (:class:`dl2llm.rag.store.Journal`), the current version is copied to a
staging folder, the change is applied there (chunk rows and vectors of a
replaced or deleted document go, new chunks are embedded and inserted), and the
copy is published as the next version. :func:`apply_journal` re-applies, after
a crash, the journaled edits a version lacks.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from pathlib import Path

import numpy as np

from dl2llm.rag.encoder import Encoder, Progress
from dl2llm.rag.index import (
    DATABASE,
    EDIT_KEEPS,
    MANIFEST,
    VECTORS,
    Index,
    insert_documents,
    save_folder,
    staging_folder,
    text_sha256,
    write_manifest,
)
from dl2llm.rag.ingest import MAX_WORDS, Document
from dl2llm.rag.store import Journal, current_folder, exclusive, publish


def _edit(data_dir: Path, change) -> Index:
    """Copy the current version, apply ``change(connection, vectors)``, publish the copy."""
    import faiss

    with exclusive(data_dir):
        current = Index.load(data_dir).folder  # refuse to edit a damaged index
        staging = staging_folder(Path(data_dir))
        try:
            shutil.copytree(current, staging, dirs_exist_ok=True)
            connection = sqlite3.connect(staging / DATABASE)
            vectors = faiss.read_index(str(staging / VECTORS))
            change(connection, vectors)
            manifest = json.loads((staging / MANIFEST).read_text())
            keep = {k: manifest[k] for k in EDIT_KEEPS if k in manifest}
            write_manifest(staging, connection, vectors, keep)
            save_folder(staging, connection, vectors)
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
        insert_documents(connection, vectors, documents, encoder, max_words, progress)

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
            d
            for d in edits.values()
            if d is not None and stored.get(d.doc_id) != text_sha256(d.text)
        ]
        removed = [doc_id for doc_id, d in edits.items() if d is None and doc_id in stored]
        if missing:
            index = _add(data_dir, missing, encoder, progress=False)
        if removed:
            index = _delete(data_dir, removed)
        return index
