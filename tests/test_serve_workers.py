"""``--workers 2``: two uvicorn worker processes serve one index, and see each other's edits."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from test_serve_fixtures import copy_index

from dl2llm.paths import REPO_ROOT
from dl2llm.serve.server import free_port
from dl2llm.serve.settings import API_KEY_ENV

API_KEY = "workers-admin-key-0123456789"
VAULT = {"id": "notes/vault.md", "text": "# Vault\n\nThe vault code is 7391.\n"}


def readiness_by_worker(url: str, timeout_s: float = 240) -> dict[int, dict]:
    """``/ready`` of each of the two workers, asked on fresh connections until both answered."""
    seen: dict[int, dict] = {}
    deadline = time.monotonic() + timeout_s
    while len(seen) < 2:
        assert time.monotonic() < deadline, f"only workers {sorted(seen)} became ready"
        try:
            body = httpx.get(f"{url}/ready", timeout=10).json()
        except httpx.TransportError:
            body = {}
        if body.get("ready"):
            seen[body["worker_pid"]] = body
        time.sleep(0.05)
    return seen


@pytest.mark.slow
def test_two_workers_serve_one_index_and_see_each_others_edits(tmp_path):
    data_dir = copy_index(tmp_path / "data")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, API_KEY_ENV: API_KEY, "HF_HUB_OFFLINE": "1"}
    command = [
        sys.executable,
        str(REPO_ROOT / "capstone" / "deployment_script.py"),
        *("--port", str(port), "--workers", "2", "--no-build"),
        *("--data-dir", str(data_dir), "--out", str(tmp_path / "results")),
    ]
    service = subprocess.Popen(command, env=env)
    try:
        before = readiness_by_worker(url)
        assert len({body["index_version"] for body in before.values()}) == 1
        upload = httpx.post(
            f"{url}/v1/documents", json=VAULT, headers={"X-API-Key": API_KEY}, timeout=120
        )
        assert upload.status_code == 201, upload.text
        after = readiness_by_worker(url)  # both workers, each on the new version
        assert {body["index_version"] for body in after.values()} == {"versions/v000002"}
        assert all(body["documents"] == 4 for body in after.values())
        for _ in range(8):  # fresh connections: the kernel spreads them over both workers
            answer = httpx.post(
                f"{url}/v1/ask", json={"question": "What is the vault code?", "k": 1}, timeout=60
            )
            assert answer.json()["sources"][0]["path"] == VAULT["id"]
        deleted = httpx.delete(
            f"{url}/v1/documents/{VAULT['id']}", headers={"X-API-Key": API_KEY}, timeout=120
        )
        assert deleted.status_code == 200
        assert all(body["documents"] == 3 for body in readiness_by_worker(url).values())
    finally:
        service.terminate()
        service.wait(timeout=60)
