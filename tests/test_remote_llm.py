"""``--llm-url``: generation on an OpenAI-compatible server, here a real one on 127.0.0.1.

The inference server is a second instance of this project's own service (its
``/v1/chat/completions`` streams OpenAI chunks), as the issue allows where
``llama-cpp-python``'s server is not built.
"""

from __future__ import annotations

import time

import httpx
import pytest
from test_serve_fixtures import TorchThreads, copy_index

from dl2llm.rag.generate import GenerationError
from dl2llm.rag.remote import ATTEMPTS, BACKOFF_S, RemoteLLMGenerator
from dl2llm.serve.server import BackgroundServer, free_port, wait_until_ready
from dl2llm.serve.settings import Settings

QUESTION = "What does functools.lru_cache do?"
MESSAGES = [{"role": "user", "content": QUESTION}]


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    data_dir = copy_index(tmp_path_factory.mktemp("upstream"))
    with TorchThreads(), BackgroundServer(Settings(str(data_dir), build_missing=False)) as up:
        wait_until_ready(up.url, timeout_s=300)
        yield up


def completions(url: str) -> float:
    wanted = 'dl2llm_http_requests_total{method="POST",route="/v1/chat/completions",status="200"}'
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(wanted):
            return float(line.split()[-1])
    return 0.0


def test_the_streamed_reply_is_the_servers_reply(upstream):
    remote = RemoteLLMGenerator(f"{upstream.url}/v1", max_new_tokens=40)
    streamed = list(remote.generate(MESSAGES, sentences=10**6))
    body = {"messages": MESSAGES, "max_tokens": 40}
    whole = httpx.post(f"{upstream.url}/v1/chat/completions", json=body, timeout=60).json()
    assert len(streamed) > 3  # it arrived in pieces
    assert "".join(streamed).strip() == whole["choices"][0]["message"]["content"]


def test_the_service_answers_through_the_inference_server(upstream, tmp_path):
    before = completions(upstream.url)
    settings = Settings(
        str(copy_index(tmp_path)),
        build_missing=False,
        generator="llm",
        llm_url=f"{upstream.url}/v1",
    )
    with TorchThreads(), BackgroundServer(settings) as service:
        ready = wait_until_ready(service.url, timeout_s=300)
        assert ready["generator"] == f"default@{upstream.url}/v1"
        answer = httpx.post(f"{service.url}/v1/ask", json={"question": QUESTION}, timeout=60)
    assert answer.status_code == 200 and "lru_cache" in answer.json()["answer"]
    assert completions(upstream.url) >= before + 1  # the question was generated there


def test_an_unreachable_server_is_retried_then_named():
    remote = RemoteLLMGenerator(f"http://127.0.0.1:{free_port()}/v1")
    started = time.perf_counter()
    with pytest.raises(GenerationError, match="cannot reach http://127.0.0.1"):
        list(remote.generate(MESSAGES))
    waited = time.perf_counter() - started
    assert waited >= BACKOFF_S * (2 ** (ATTEMPTS - 1) - 1)  # 0.5 + 1 + 2 s of backoff


def test_a_refusal_is_not_retried(upstream):
    remote = RemoteLLMGenerator(f"{upstream.url}/wrong")
    started = time.perf_counter()
    with pytest.raises(GenerationError, match="answered 404"):
        list(remote.generate(MESSAGES))
    assert time.perf_counter() - started < BACKOFF_S
