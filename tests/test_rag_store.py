"""The index store: versioned folders, an atomic pointer, a journal, one lock for all writers.

The crash tests run a real edit in a real process and SIGKILL it at each step
(:data:`dl2llm.rag.store.STEPS`, set through ``DL2LLM_KILL_AT``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_serve_fixtures import copy_index, encoder, sample_index_dir

from dl2llm.rag import ensure_index, sample_documents
from dl2llm.rag.edits import add_documents, apply_journal, delete_documents
from dl2llm.rag.index import Index
from dl2llm.rag.ingest import Document
from dl2llm.rag.store import (
    INDEX_FOLDER,
    KEEP_VERSIONS,
    KILL_ENV,
    STEPS,
    VERSIONS,
    Journal,
    current_folder,
    current_version,
    recover,
)

VAULT = Document("notes/vault.md", "# Vault\n\nThe vault code is 7391.\n", "markdown")
GONE = "faq/windows.rst"
EDIT_SCRIPT = """
import sys
from dl2llm.rag.edits import add_documents, delete_documents
from dl2llm.rag.encoder import Encoder
from dl2llm.rag.ingest import Document
data_dir, action = sys.argv[1], sys.argv[2]
if action == "add":
    text = "# Vault\\n\\nThe vault code is 7391.\\n"
    add_documents(data_dir, [Document("notes/vault.md", text, "markdown")], Encoder())
else:
    delete_documents(data_dir, ["faq/windows.rst"])
print("acknowledged", flush=True)
"""


def run_edit(data_dir: Path, action: str, kill_at: str | None = None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop(KILL_ENV, None)
    if kill_at:
        env[KILL_ENV] = kill_at
    command = [sys.executable, "-c", EDIT_SCRIPT, str(data_dir), action]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("action", ["add", "delete"])
@pytest.mark.parametrize("step", STEPS)
def test_kill_at_each_step_leaves_a_whole_index_and_loses_no_journaled_edit(tmp_path, step, action):
    data_dir = copy_index(tmp_path)
    before = set(Index.load(data_dir).documents)
    after = before | {VAULT.doc_id} if action == "add" else before - {GONE}
    edit = run_edit(data_dir, action, kill_at=step)
    output, _ = edit.communicate(timeout=300)
    assert edit.returncode == -signal.SIGKILL and "acknowledged" not in output
    recover(data_dir)
    survivor = Index.load(data_dir)  # the last good index, whole
    assert survivor.vectors.ntotal == len(survivor)
    assert set(survivor.documents) == (after if step == "pointer-swapped" else before)
    synced = apply_journal(data_dir, encoder())  # what the next start does
    assert set(synced.documents) == after
    assert not list(data_dir.glob(".index-*"))


@pytest.mark.slow
def test_two_processes_editing_at_once_both_land(tmp_path):
    data_dir = copy_index(tmp_path)
    edits = [run_edit(data_dir, "add"), run_edit(data_dir, "delete")]
    assert [e.communicate(timeout=300)[0].strip() for e in edits] == ["acknowledged"] * 2
    documents = set(Index.load(data_dir).documents)
    assert VAULT.doc_id in documents and GONE not in documents
    assert len(list((data_dir / VERSIONS).iterdir())) <= KEEP_VERSIONS


def test_edits_are_versioned_behind_an_atomic_pointer(tmp_path):
    data_dir = tmp_path / "data"  # the older layout: index/ is a real folder
    shutil.copytree(current_folder(sample_index_dir()), data_dir / INDEX_FOLDER)
    first = add_documents(data_dir, [VAULT], encoder())
    assert (data_dir / INDEX_FOLDER).is_symlink()
    assert current_version(data_dir) == f"{VERSIONS}/v000002"  # v000001: the adopted folder
    assert first.folder == (data_dir / VERSIONS / "v000002").resolve()
    old_ids = {i for i, c in first.chunks.items() if c.doc_id == VAULT.doc_id}
    delete_documents(data_dir, [VAULT.doc_id])
    again = add_documents(data_dir, [VAULT], encoder())
    new_ids = {i for i, c in again.chunks.items() if c.doc_id == VAULT.doc_id}
    assert min(new_ids) > max(old_ids)  # ids are never reused
    assert sorted(p.name for p in (data_dir / VERSIONS).iterdir()) == [
        "v000002",
        "v000003",
        "v000004",
    ]


def test_a_dangling_pointer_is_repaired_to_the_newest_whole_version(tmp_path):
    data_dir = copy_index(tmp_path)
    add_documents(data_dir, [VAULT], encoder())
    (data_dir / INDEX_FOLDER).unlink()
    os.symlink(f"{VERSIONS}/v000099", data_dir / INDEX_FOLDER)
    (data_dir / ".index-build-dead").mkdir()
    assert recover(data_dir) == f"{VERSIONS}/v000002"
    assert VAULT.doc_id in Index.load(data_dir).documents
    assert not (data_dir / ".index-build-dead").exists()


@pytest.mark.slow
def test_a_rebuild_reapplies_every_upload_and_deletion(tmp_path):
    docs = tmp_path / "docs"
    documents, _ = sample_documents()
    for document in documents:
        (docs / document.doc_id).parent.mkdir(parents=True, exist_ok=True)
        (docs / document.doc_id).write_text(document.text)
    data_dir = tmp_path / "data"
    ensure_index(data_dir, encoder(), docs, progress=False)
    add_documents(data_dir, [VAULT], encoder())
    delete_documents(data_dir, [GONE])
    assert set(Journal(data_dir).edits()) == {VAULT.doc_id, GONE}
    rebuilt = ensure_index(data_dir, encoder(), docs, rebuild=True, progress=False)
    assert VAULT.doc_id in rebuilt.documents and GONE not in rebuilt.documents
    assert rebuilt.manifest["documents"] == len(documents)  # 3 - 1 + 1
