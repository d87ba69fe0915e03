"""Keeping an index safe on disk: versioned folders, an atomic pointer, a lock and a journal.

A service must survive ``kill -9`` at any instant without losing an upload it
acknowledged, and several worker processes must agree on one index. The recipe
is the one databases and package managers use::

    <data_dir>/index -> versions/v000012   the pointer: a symlink, swapped with rename(2)
    <data_dir>/versions/v000012/           one complete index per version, never edited
    <data_dir>/journal.sqlite              every upload (raw text) and deletion
    <data_dir>/.lock                       an flock held by whoever changes the index

An edit takes the lock, commits the upload to the journal, builds the next
version in a staging folder, renames it into ``versions/`` and swaps the
pointer. Each step is one atomic rename or one SQLite commit, so a reader --
another worker, or the next start -- finds either the old index or the new one,
whole. A crash after the journal commit and before the swap leaves the upload in
the journal only; :func:`sync_journal` re-applies it on the next start, and
every rebuild of the corpus re-applies the whole journal (:meth:`Journal.apply`),
so uploads and deletions outlive a change of chunker too. The client hears
"201" only after the swap.

:func:`checkpoint` marks the steps; the crash tests SIGKILL a real process at each.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

from dl2llm.rag.ingest import Document

INDEX_FOLDER = "index"
VERSIONS = "versions"
JOURNAL = "journal.sqlite"
LOCK_FILE = ".lock"
STAGING_PREFIX = ".index-build-"
LEGACY_BACKUP = ".index.old"  # left by the in-place swap this layout replaced
KEEP_VERSIONS = 3  # the current one and two before it, for workers still loading them
KILL_ENV = "DL2LLM_KILL_AT"
STEPS = ("journal-written", "version-written", "pointer-swapped")
_VERSION_NAME = re.compile(r"v(\d{6})")
_held = threading.local()


def checkpoint(step: str) -> None:
    """SIGKILL this process at ``step`` when ``DL2LLM_KILL_AT`` names it (crash tests)."""
    if os.environ.get(KILL_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def exclusive(data_dir: str | Path, wait: bool = True) -> Iterator[None]:
    """Hold ``<data_dir>/.lock``: one writer at a time across threads and processes.

    Re-entrant within a thread, so an edit can call helpers that lock too. With
    ``wait=False`` a lock held elsewhere raises :class:`BlockingIOError` at once.
    """
    data_dir = Path(data_dir)
    key = str(data_dir.resolve())
    held = _held.__dict__.setdefault("dirs", set())
    if key in held:
        yield
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(data_dir / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def current_version(data_dir: str | Path) -> str | None:
    """The version the pointer names (``versions/v000012``), ``None`` without one."""
    try:
        return os.readlink(Path(data_dir) / INDEX_FOLDER)
    except (FileNotFoundError, OSError):
        return None


def current_folder(data_dir: str | Path) -> Path:
    """The folder of the current version, resolved once so a swap cannot split a read."""
    return (Path(data_dir) / INDEX_FOLDER).resolve()


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)


def _versions(data_dir: Path) -> list[Path]:
    """Complete versions (those with a manifest), oldest first."""
    folder = data_dir / VERSIONS
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _VERSION_NAME.fullmatch(p.name)]
    return sorted((p for p in found if (p / "manifest.json").is_file()), key=lambda p: p.name)


def _point_at(data_dir: Path, version: Path) -> None:
    """Swap the pointer to ``version`` in one rename: readers never see it missing."""
    link = data_dir / f".index-link-{os.getpid()}-{threading.get_ident()}"
    link.unlink(missing_ok=True)
    os.symlink(f"{VERSIONS}/{version.name}", link)
    os.replace(link, data_dir / INDEX_FOLDER)
    _fsync_dir(data_dir)


def _next_version(data_dir: Path) -> Path:
    (data_dir / VERSIONS).mkdir(parents=True, exist_ok=True)
    taken = [int(_VERSION_NAME.fullmatch(p.name).group(1)) for p in _versions(data_dir)]
    return data_dir / VERSIONS / f"v{max(taken, default=0) + 1:06d}"


def _adopt_legacy(data_dir: Path) -> None:
    """Move an index of the older in-place layout (a real ``index/`` folder, or the
    ``.index.old`` a crash mid-swap left) into ``versions/`` and point at it."""
    pointer, backup = data_dir / INDEX_FOLDER, data_dir / LEGACY_BACKUP
    legacy = pointer if pointer.is_dir() and not pointer.is_symlink() else backup
    if legacy.is_dir() and (legacy == pointer or not pointer.exists()):
        version = _next_version(data_dir)
        os.replace(legacy, version)
        _point_at(data_dir, version)
    shutil.rmtree(backup, ignore_errors=True)


def publish(data_dir: str | Path, staging: Path) -> Path:
    """Make the complete index in ``staging`` the current version; returns its folder.

    The caller holds :func:`exclusive`. Older versions beyond
    :data:`KEEP_VERSIONS` are removed.
    """
    data_dir = Path(data_dir)
    _adopt_legacy(data_dir)
    version = _next_version(data_dir)
    _fsync_tree(staging)
    os.replace(staging, version)
    _fsync_dir(version.parent)
    checkpoint("version-written")
    _point_at(data_dir, version)
    checkpoint("pointer-swapped")
    for old in _versions(data_dir)[:-KEEP_VERSIONS]:
        shutil.rmtree(old, ignore_errors=True)
    return version


def recover(data_dir: str | Path) -> str | None:
    """Repair what a crash can leave; returns the current version (``None``: no index).

    Removes half-built staging folders and stray links, adopts an index of the
    older in-place layout, and points a missing or dangling pointer at the
    newest complete version. When another process holds the lock it is alive
    and mid-change (its staging folder is not debris): nothing is touched.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return None
    try:
        with exclusive(data_dir, wait=False):
            return _repair(data_dir)
    except BlockingIOError:
        return current_version(data_dir)


def _repair(data_dir: Path) -> str | None:
    for stray in [*data_dir.glob(f"{STAGING_PREFIX}*"), *data_dir.glob(".index-link-*")]:
        if stray.is_symlink() or stray.is_file():
            stray.unlink()
        else:
            shutil.rmtree(stray, ignore_errors=True)
    _adopt_legacy(data_dir)
    versions = _versions(data_dir)
    if versions and not (data_dir / INDEX_FOLDER).exists():  # missing, or dangling
        _point_at(data_dir, versions[-1])
    return current_version(data_dir)


class Journal:
    """Uploads and deletions with their raw text, committed before the index changes.

    One row per document id: its latest text, or ``NULL`` once deleted. SQLite in
    WAL mode with ``synchronous=FULL``: a committed row survives a crash.
    """

    def __init__(self, data_dir: str | Path):
        self.path = Path(data_dir) / JOURNAL

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=60)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS edits (doc_id TEXT PRIMARY KEY, text TEXT, kind TEXT,"
            " at REAL NOT NULL)"
        )
        return connection

    def put(self, documents: Sequence[Document]) -> None:
        """Record uploads (a later upload of the same id replaces the earlier)."""
        rows = [(d.doc_id, d.text, d.kind, time.time()) for d in documents]
        self._write("INSERT OR REPLACE INTO edits VALUES (?, ?, ?, ?)", rows)

    def delete(self, doc_ids: Iterable[str]) -> None:
        """Record deletions."""
        rows = [(doc_id, None, None, time.time()) for doc_id in doc_ids]
        self._write("INSERT OR REPLACE INTO edits VALUES (?, ?, ?, ?)", rows)

    def _write(self, statement: str, rows: list[tuple]) -> None:
        with closing(self._connect()) as connection, connection:
            connection.executemany(statement, rows)
        checkpoint("journal-written")

    def edits(self) -> dict[str, Document | None]:
        """``{doc_id: the uploaded document, or None when deleted}``."""
        if not self.path.is_file():
            return {}
        with closing(self._connect()) as connection:
            rows = connection.execute("SELECT doc_id, text, kind FROM edits ORDER BY at").fetchall()
        return {
            doc_id: Document(doc_id, text, kind) if text is not None else None
            for doc_id, text, kind in rows
        }

    def apply(self, documents: Iterable[Document]) -> list[Document]:
        """``documents`` (a corpus) with every recorded upload and deletion applied."""
        edits = self.edits()
        kept = [d for d in documents if d.doc_id not in edits]
        return kept + [d for d in edits.values() if d is not None]
