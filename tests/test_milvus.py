"""Milvus as the vector store, on the real engine: Milvus Lite in-process and as a server.

Retrieval must match the embedded index (FAISS flat + bm25s) on the same chunks;
the service must keep uploads in Milvus across restarts; two services on one
Milvus server must see each other's uploads (the API tier holds no state).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from test_serve_fixtures import TorchThreads, encoder, sample_index_dir

from dl2llm.paths import DATA_DIR, REPO_ROOT
from dl2llm.rag import sample_documents
from dl2llm.rag.index import Index
from dl2llm.rag.milvus import MilvusIndex, ensure_milvus_index, parse_vector_store
from dl2llm.rag.retrieve import MODES, Retriever
from dl2llm.serve.server import BackgroundServer, free_port, wait_until_ready
from dl2llm.serve.settings import API_KEY_ENV, Settings

API_KEY = "milvus-admin-key-0123456789"
VAULT = {"id": "notes/vault.md", "text": "# Vault\n\nThe vault code is 7391.\n"}


def questions(limit: int = 40) -> list[str]:
    """Questions as people ask them: the capstone evaluation's first answerable split."""
    lines = (DATA_DIR / "capstone_qa" / "answerable_a.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines[:limit]]


@pytest.fixture(scope="module")
def milvus_lite(tmp_path_factory) -> MilvusIndex:
    documents, source = sample_documents()
    path = tmp_path_factory.mktemp("milvus") / "sample.db"
    return ensure_milvus_index(str(path), encoder(), documents, source, progress=False)


def key(hit) -> tuple[str, str, str]:
    return hit.doc_id, hit.anchor, hit.text


@pytest.mark.parametrize("mode", MODES)
def test_milvus_finds_what_the_embedded_index_finds(milvus_lite, mode):
    embedded = Retriever(Index.load(sample_index_dir()), encoder())
    milvus = Retriever(milvus_lite, encoder())
    overlaps = []
    for question in questions():
        ours = [key(h) for h in embedded.retrieve(question, 10, mode)]
        theirs = [key(h) for h in milvus.retrieve(question, 10, mode)]
        overlaps.append(len(set(ours) & set(theirs)) / len(ours) if ours else float(not theirs))
        if mode == "dense":
            assert theirs[:3] == ours[:3]
    assert sum(overlaps) / len(overlaps) >= 0.99, overlaps


def test_the_collection_knows_its_corpus(milvus_lite):
    embedded = Index.load(sample_index_dir())
    assert len(milvus_lite) == len(embedded) == 68
    assert milvus_lite.documents == embedded.documents
    assert milvus_lite.names == embedded.names and milvus_lite.modules == {"functools"}
    assert milvus_lite.manifest["source"] == embedded.manifest["source"]


def test_vector_store_values():
    assert parse_vector_store("faiss") is None
    assert parse_vector_store("milvus://data/m.db") == "data/m.db"
    assert parse_vector_store("milvus://localhost:19530") == "http://localhost:19530"
    assert parse_vector_store("http://10.0.0.5:19530") == "http://10.0.0.5:19530"
    with pytest.raises(ValueError, match="milvus://<file>.db"):
        parse_vector_store("postgres://x")


@pytest.fixture
def admin(monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, API_KEY)


def upload(url: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/documents", json=VAULT, headers={"X-API-Key": API_KEY}, timeout=60)


def vault_source(url: str) -> str:
    body = {"question": "What is the vault code?", "k": 1}
    return httpx.post(f"{url}/v1/ask", json=body, timeout=60).json()["sources"][0]["path"]


@pytest.mark.slow
def test_uploads_land_in_milvus_and_survive_a_restart(tmp_path, admin):
    store = str(tmp_path / "store.db")
    documents, source = sample_documents()
    ensure_milvus_index(store, encoder(), documents, source, progress=False).close()
    settings = Settings(str(tmp_path / "unused"), vector_store=store, build_missing=False)
    with TorchThreads(), BackgroundServer(settings) as first:
        wait_until_ready(first.url, timeout_s=300)
        assert upload(first.url).status_code == 201
        assert vault_source(first.url) == VAULT["id"]
    with TorchThreads(), BackgroundServer(settings) as second:  # a restart
        ready = wait_until_ready(second.url, timeout_s=300)
        assert ready["documents"] == 4 and vault_source(second.url) == VAULT["id"]
        deleted = httpx.delete(
            f"{second.url}/v1/documents/{VAULT['id']}", headers={"X-API-Key": API_KEY}
        )
        assert deleted.status_code == 200
    with TorchThreads(), BackgroundServer(settings) as third:
        assert wait_until_ready(third.url, timeout_s=300)["documents"] == 3


@pytest.mark.slow
def test_two_services_on_one_milvus_server_see_each_others_uploads(tmp_path, admin):
    port = free_port()
    milvus_port = free_port()
    milvus = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "milvus_lite",
            "server",
            "--data-dir",
            str(tmp_path / "milvus"),
            "--port",
            str(milvus_port),
        ],  # fmt: skip
    )
    uri = f"http://127.0.0.1:{milvus_port}"
    service = None
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                documents, source = sample_documents()
                ensure_milvus_index(uri, encoder(), documents, source, progress=False).close()
                break
            except Exception:
                assert time.monotonic() < deadline, "milvus-lite server did not start"
                time.sleep(0.5)
        env = {**os.environ, API_KEY_ENV: API_KEY, "HF_HUB_OFFLINE": "1"}
        command = [
            sys.executable,
            str(REPO_ROOT / "capstone" / "deployment_script.py"),
            *("--port", str(port), "--vector-store", f"milvus://127.0.0.1:{milvus_port}"),
            *("--data-dir", str(tmp_path / "unused"), "--out", str(tmp_path / "results")),
        ]
        service = subprocess.Popen(command, env=env)  # another process
        settings = Settings(str(tmp_path / "unused"), vector_store=uri, build_missing=False)
        other = f"http://127.0.0.1:{port}"
        with TorchThreads(), BackgroundServer(settings) as local:
            wait_until_ready(local.url, timeout_s=300)
            wait_until_ready(other, timeout_s=300)
            assert upload(local.url).status_code == 201
            assert vault_source(other) == VAULT["id"]  # uploaded through one, found by the other
    finally:
        for process in (service, milvus):
            if process is not None:
                process.terminate()
                process.wait(timeout=60)
