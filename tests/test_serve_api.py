"""The HTTP service on a real uvicorn server on 127.0.0.1: API, bad input, admin, load, faults.

Most tests use the default evidence generator (no LLM) so that hundreds of
requests stay cheap; ``llm_server`` answers with the real SmolLM2.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from test_serve_fixtures import TorchThreads, copy_index

from dl2llm.rag import sample_documents
from dl2llm.rag.encoder import shared_encoder
from dl2llm.rag.generate import IDK
from dl2llm.rag.index import INDEX_FOLDER, VECTORS
from dl2llm.rag.ingest import Document
from dl2llm.rag.store import exclusive
from dl2llm.serve.server import BackgroundServer, wait_until_ready
from dl2llm.serve.settings import API_KEY_ENV, Settings

API_KEY = "test-admin-key-0123456789"
QUESTION = "What does functools.lru_cache do?"


@pytest.fixture(scope="module")
def admin_env():
    with pytest.MonkeyPatch.context() as patch, TorchThreads():
        patch.setenv(API_KEY_ENV, API_KEY)
        yield patch


@pytest.fixture(scope="module")
def server(tmp_path_factory, admin_env):
    data_dir = copy_index(tmp_path_factory.mktemp("evidence"))
    settings = Settings(str(data_dir), build_missing=False, max_concurrent=4)
    with BackgroundServer(settings) as running:
        wait_until_ready(running.url, timeout_s=300)
        yield running


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory, admin_env):
    data_dir = copy_index(tmp_path_factory.mktemp("llm"))
    settings = Settings(str(data_dir), generator="llm", build_missing=False, max_new_tokens=16)
    with BackgroundServer(settings) as running:
        wait_until_ready(running.url, timeout_s=300)
        yield running


def post(server, path: str, body: dict, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, timeout=120, **kwargs)


def events(response: httpx.Response) -> list[tuple[str, str]]:
    """``(event, data)`` pairs of a server-sent event stream."""
    parsed = []
    for block in response.text.split("\n\n"):
        if block.strip():
            fields = dict(line.split(": ", 1) for line in block.splitlines())
            parsed.append((fields.get("event", "message"), fields["data"]))
    return parsed


def test_health_ready_and_schema(server):
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/ready").json()
    assert ready["ready"] is True and ready["chunks"] == 68 and ready["generator"] == "evidence"
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert {"/v1/ask", "/v1/chat/completions", "/v1/documents", "/v1/documents/{doc_id}"} <= set(
        paths
    )
    assert {"/health", "/ready", "/metrics"} <= set(paths)


def test_ask_answers_with_sources_relative_to_the_corpus(server):
    response = post(server, "/v1/ask", {"question": QUESTION, "k": 3, "mode": "hybrid"})
    assert response.status_code == 200
    body = response.json()
    assert len(body["sources"]) == 3
    assert body["sources"][0]["path"] == "library/functools.rst"
    assert any(s["anchor"] == "functools.lru_cache" for s in body["sources"])
    assert all(s["text"] and s["title"] for s in body["sources"])
    assert body["answer"].startswith("`functools.lru_cache(") and not body["refused"]
    assert re.search(r"【[123]】\.?$", body["answer"])  # every cited passage is a shown source
    urls = [s["url"] for s in body["sources"]]
    assert "https://docs.python.org/3.11/library/functools.html#functools.lru_cache" in urls
    assert set(body["timings"]) == {"retrieve_ms", "generate_ms", "total_ms"}


def test_ask_streams_sources_tokens_then_done(server):
    response = post(server, "/v1/ask", {"question": QUESTION, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    stream = events(response)
    names = [name for name, _ in stream]
    assert names[0] == "sources" and names[-1] == "done" and names.count("token") > 1
    tokens = "".join(json.loads(data)["text"] for name, data in stream if name == "token")
    assert json.loads(stream[-1][1])["answer"] == tokens.strip()


def test_off_topic_question_gets_i_dont_know(server):
    body = post(server, "/v1/ask", {"question": "Who painted the Mona Lisa?"}).json()
    assert body["answer"] == IDK and body["refused"] is True


LONG = "x" * 2001
BAD_INPUT = [
    ({"question": ""}, 422, "question: String should have at least 1 character"),
    ({"question": "  \n\t "}, 422, "question: Value error, must not be empty or only whitespace"),
    ({"question": LONG}, 422, "question: String should have at most 2000 characters"),
    ({"question": 5}, 422, "question: Input should be a valid string"),
    ({"question": "a", "k": 0}, 422, "k: Input should be greater than or equal to 1"),
    ({"question": "a", "k": 21}, 422, "k: Input should be less than or equal to 20"),
    ({"question": "a", "k": "five"}, 422, "k: Input should be a valid integer"),
    ({"question": "a", "mode": "fuzzy"}, 422, "mode: Input should be 'dense', 'bm25' or 'hybrid'"),
    ({"question": "a", "colour": "red"}, 422, "colour: Extra inputs are not permitted"),
    ({}, 422, "question: Field required"),
    ([1, 2], 422, "Input should be a valid dictionary"),
    (b'{"question": "a"', 422, "body: invalid JSON"),
    (b'{"question": "caf\xe9"}', 400, "not valid UTF-8 JSON"),
    (b'{"question": "' + b"a" * 300_000 + b'"}', 413, "larger than the limit of 262144 bytes"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_INPUT)
def test_bad_input_is_a_4xx_that_says_what_is_wrong(server, body, status, message):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.post(
        f"{server.url}/v1/ask",
        content=content,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == status
    assert message in response.json()["error"]


def test_oversized_chunked_body_is_refused_without_content_length(server):
    def chunks():
        yield b'{"question": "'
        for _ in range(40):
            yield b"a" * 10_000
        yield b'"}'

    response = httpx.post(f"{server.url}/v1/ask", content=chunks(), timeout=30)
    assert response.status_code == 413


def test_chat_completions_non_streaming(server):
    body = {"model": "any", "messages": [{"role": "user", "content": QUESTION}]}
    response = post(server, "/v1/chat/completions", body)
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion" and data["id"].startswith("chatcmpl-")
    assert data["choices"][0]["message"]["role"] == "assistant"
    assert data["choices"][0]["message"]["content"]
    assert data["choices"][0]["finish_reason"] == "stop"


def test_chat_completions_streaming_ends_with_done(server):
    body = {"messages": [{"role": "user", "content": QUESTION}], "stream": True}
    stream = events(post(server, "/v1/chat/completions", body))
    assert stream[-1] == ("message", "[DONE]")
    chunks = [json.loads(data) for _, data in stream[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.strip().startswith("`functools.lru_cache(") and "【" in text


def test_chat_without_a_user_question_is_422(server):
    body = {"messages": [{"role": "system", "content": "be nice"}]}
    response = post(server, "/v1/chat/completions", body)
    assert response.status_code == 422
    error = response.json()["error"]  # OpenAI's shape on OpenAI's paths
    assert "last user message" in error["message"] and error["type"] == "invalid_request_error"
    assert error["param"] == "messages"


NOTE = {"id": "notes/quokka.md", "text": "# Quokka facts\n\nThe quokka vault code is 7391.\n"}


def test_admin_endpoints_need_the_key(server):
    assert post(server, "/v1/documents", NOTE).status_code == 401
    wrong = post(server, "/v1/documents", NOTE, headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401 and "wrong API key" in wrong.json()["error"]
    deleted = httpx.delete(f"{server.url}/v1/documents/faq/windows.rst")
    assert deleted.status_code == 401


def test_admin_add_then_delete_a_document(server):
    added = post(server, "/v1/documents", NOTE, headers={"Authorization": f"Bearer {API_KEY}"})
    assert added.status_code == 201 and added.json()["chunks"] == 1
    found = post(server, "/v1/ask", {"question": "quokka vault code", "mode": "bm25", "k": 1})
    assert found.json()["sources"][0]["path"] == "notes/quokka.md"
    headers = {"X-API-Key": API_KEY}
    url = f"{server.url}/v1/documents/notes/quokka.md"
    assert httpx.delete(url, headers=headers).status_code == 200
    assert httpx.delete(url, headers=headers).status_code == 404
    after = post(server, "/v1/ask", {"question": "quokka vault code", "mode": "bm25", "k": 1})
    assert all(s["path"] != "notes/quokka.md" for s in after.json()["sources"])


def test_a_title_only_upload_is_a_clear_422(server):
    body = {"id": "notes/empty.rst", "text": "Title\n=====\n"}
    response = post(server, "/v1/documents", body, headers={"X-API-Key": API_KEY})
    assert response.status_code == 422
    assert "nothing to index beyond its title" in response.json()["error"]


def test_admin_refuses_everything_when_no_key_is_configured(server, admin_env):
    admin_env.delenv(API_KEY_ENV)
    try:
        response = post(server, "/v1/documents", NOTE, headers={"X-API-Key": ""})
        assert response.status_code == 401
        assert "DL2LLM_API_KEY is not set" in response.json()["error"]
    finally:
        admin_env.setenv(API_KEY_ENV, API_KEY)


def test_metrics_count_requests_and_latency(server):
    for _ in range(3):
        post(server, "/v1/ask", {"question": QUESTION})
    text = httpx.get(f"{server.url}/metrics").text
    counts = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("dl2llm_http_requests_total{")
    }
    key = 'dl2llm_http_requests_total{method="POST",route="/v1/ask",status="200"}'
    assert counts[key] >= 3
    assert 'dl2llm_http_request_duration_seconds_bucket{le="0.05",route="/v1/ask"}' in text
    assert 'dl2llm_rag_stage_seconds_count{stage="retrieve"}' in text


def test_load_200_requests_16_clients_only_200_or_429_with_retry_after(server):
    questions = [QUESTION, "How do I handle exceptions?", "Windows executable", "partial"]

    def one(i: int) -> httpx.Response:
        body = {
            "question": questions[i % 4],
            "k": 1 + i % 10,
            "mode": ["dense", "bm25", "hybrid"][i % 3],
        }
        return httpx.post(f"{server.url}/v1/ask", json=body, timeout=120)

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(one, range(200)))
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 429}, statuses
    assert statuses[200] >= 1
    busy = [r for r in responses if r.status_code == 429]
    assert all(int(r.headers["retry-after"]) >= 1 for r in busy)
    assert all("server busy" in r.json()["error"] for r in busy)
    assert httpx.get(f"{server.url}/ready").json()["ready"] is True
    rejected = [
        line
        for line in httpx.get(f"{server.url}/metrics").text.splitlines()
        if line.startswith('dl2llm_rejected_busy_total{route="/v1/ask"}')
    ]
    assert statuses[429] == (float(rejected[0].split()[-1]) if rejected else 0)


@pytest.mark.slow
def test_schemathesis_with_the_admin_key_finds_no_server_error(tmp_path, admin_env):
    """Schemathesis generates valid and invalid requests from /openapi.json for every
    endpoint, admin ones included (it sends the key); no 5xx allowed."""
    settings = Settings(str(copy_index(tmp_path)), build_missing=False, max_concurrent=4)
    with BackgroundServer(settings) as running:
        wait_until_ready(running.url, timeout_s=300)
        command = [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{running.url}/openapi.json",
            f"--header=X-API-Key: {API_KEY}",
            "--checks=not_a_server_error",
            "--max-examples=25",
            "--phases=examples,coverage,fuzzing",
            "--seed=0",
            "--generation-database=none",
            "--request-timeout=60",
            "--no-color",
        ]
        run = subprocess.run(command, capture_output=True, text=True, timeout=900)
        metrics = httpx.get(f"{running.url}/metrics").text
    assert run.returncode == 0, run.stdout[-3000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert cases and int(cases.group(2)) == int(cases.group(1)) >= 100, run.stdout[-3000:]
    # The key let it in: uploads were added, deletions got past authentication to the lookup.
    assert re.search(r'"POST",route="/v1/documents",status="201"', metrics), metrics
    assert re.search(r'"DELETE",route="/v1/documents/\{doc_id\}",status="(200|404)"', metrics)
    assert not re.search(r'status="401"', metrics), metrics


def test_corrupt_index_gives_a_clear_error_and_not_ready(tmp_path):
    data_dir = copy_index(tmp_path)
    (data_dir / INDEX_FOLDER / VECTORS).write_bytes(b"garbage")
    settings = Settings(str(data_dir), build_missing=False)
    with BackgroundServer(settings) as running:
        with pytest.raises(RuntimeError, match="unreadable .* rebuild it with"):
            wait_until_ready(running.url, timeout_s=300)
        assert httpx.get(f"{running.url}/ready").status_code == 503
        assert httpx.get(f"{running.url}/health").status_code == 200
        refused = post(running, "/v1/ask", {"question": QUESTION})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
        assert refused.json()["error"].startswith("not ready: the index in")


def test_missing_index_without_build_is_not_ready(tmp_path):
    settings = Settings(str(tmp_path), build_missing=False)
    expected = pytest.raises(RuntimeError, match="no index in .* build it with")
    with BackgroundServer(settings) as running, expected:
        wait_until_ready(running.url, timeout_s=300)


def test_missing_model_names_the_asset_command(tmp_path, monkeypatch):
    shared_encoder.cache_clear()  # load from the (empty) cache, not from memory
    monkeypatch.setenv("DL2LLM_HOME", str(tmp_path / "empty-cache"))
    settings = Settings(str(tmp_path))
    with BackgroundServer(settings) as running:
        with pytest.raises(RuntimeError, match="asset 'minilm' is missing .*dl2llm assets fetch"):
            wait_until_ready(running.url, timeout_s=120)
        assert httpx.get(f"{running.url}/health").status_code == 200


@pytest.mark.slow
def test_end_to_end_with_smollm2(llm_server):
    ready = httpx.get(f"{llm_server.url}/ready").json()
    assert ready["generator"] == "smollm2"  # the converted SmolLM2 folder's name
    body = post(llm_server, "/v1/ask", {"question": QUESTION, "k": 3}).json()
    assert body["answer"] and body["answer"] != IDK and not body["refused"]
    assert body["sources"][0]["path"] == "library/functools.rst"
    stream = events(post(llm_server, "/v1/ask", {"question": QUESTION, "k": 3, "stream": True}))
    tokens = [json.loads(data)["text"] for name, data in stream if name == "token"]
    assert len(tokens) > 1 and "".join(tokens).strip() == body["answer"]


def test_load_200_requests_32_clients_on_the_real_generator(llm_server):
    """SmolLM2 answering, 8 slots: every request is answered or told when to come back."""

    def one(i: int) -> httpx.Response:
        body = {"question": [QUESTION, "How do I handle exceptions?"][i % 2], "k": 3}
        return httpx.post(f"{llm_server.url}/v1/ask", json=body, timeout=300)

    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(one, range(200)))
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 429} and statuses[200] >= 8, statuses
    assert all(int(r.headers["retry-after"]) >= 1 for r in responses if r.status_code == 429)
    assert all(r.json()["answer"] for r in responses if r.status_code == 200)


def test_first_start_opens_the_port_at_once_and_builds_in_the_background(tmp_path, admin_env):
    docs = tmp_path / "docs"
    documents, _ = sample_documents()  # 68 chunks to embed: the build takes a moment
    vault = Document("vault.md", "# Vault\n\nThe vault code is 7391.\n", "markdown")
    for document in [*documents, vault]:
        (docs / document.doc_id).parent.mkdir(parents=True, exist_ok=True)
        (docs / document.doc_id).write_text(document.text)
    data_dir = tmp_path / "data"
    settings = Settings(str(data_dir), docs=str(docs), build_missing=True)
    holding = exclusive(data_dir)  # as if another worker were building: answer by BM25 meanwhile
    holding.__enter__()
    with BackgroundServer(settings) as running:
        try:
            assert httpx.get(f"{running.url}/health").status_code == 200
            first = httpx.get(f"{running.url}/ready")
            assert first.status_code == 503
            assert first.headers.get("content-type") == "application/json"
            assert not first.json()["ready"]
            deadline = time.monotonic() + 120
            while not httpx.get(f"{running.url}/ready").json()["answering"]:
                assert time.monotonic() < deadline, "no answers while the index builds"
                time.sleep(0.2)
            waiting = httpx.get(f"{running.url}/ready").json()
            assert waiting["phase"] == "waiting for another worker's build"
            early = post(running, "/v1/ask", {"question": "What is the vault code?", "k": 1})
            assert early.status_code == 200, early.text
            assert early.json()["retrieval"] == "bm25"
            assert early.json()["sources"][0]["path"] == "vault.md"
            upload = {"id": "late.md", "text": "# Late\n\nToo early.\n"}
            refused = post(running, "/v1/documents", upload, headers={"X-API-Key": API_KEY})
            assert refused.status_code == 503 and "edits" in refused.json()["error"]
        finally:
            holding.__exit__(None, None, None)
        ready = wait_until_ready(running.url, timeout_s=300)
        assert ready["progress"]["percent"] == 100.0
        assert ready["progress"]["done"] == ready["chunks"]
        found = post(running, "/v1/ask", {"question": "vault code", "mode": "bm25", "k": 1})
        assert found.json()["sources"][0]["path"] == "vault.md"
        assert found.json()["retrieval"] == "bm25"
        hybrid = post(running, "/v1/ask", {"question": "What is the vault code?", "k": 1})
        assert hybrid.json()["retrieval"] == "hybrid"
    assert (tmp_path / "data" / INDEX_FOLDER).is_dir()
