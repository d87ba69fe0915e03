"""``--llm-url``: generation on an OpenAI-compatible server, here real ones on 127.0.0.1.

Two inference servers, started by the tests:

- ``llama.cpp``: ``llama-cpp-python``'s server on the SmolLM2 GGUF the project
  ships, where the package is built (``make test`` builds it from source);
- ``dl2llm``: a second instance of this project's own service, whose
  ``/v1/chat/completions`` streams OpenAI chunks (always available).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from test_serve_fixtures import TorchThreads, copy_index

from dl2llm.assets import asset_file
from dl2llm.rag.generate import GenerationError
from dl2llm.rag.remote import ATTEMPTS, BACKOFF_S, RemoteLLMGenerator
from dl2llm.serve.server import BackgroundServer, free_port, wait_until_ready
from dl2llm.serve.settings import Settings

QUESTION = "What does functools.lru_cache do?"
MESSAGES = [{"role": "user", "content": QUESTION}]
GGUF = ("smollm2-gguf", "SmolLM2-135M-Instruct.Q4_1.gguf")
HAS_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None


@dataclass
class Upstream:
    """An inference server: its OpenAI base URL and how many chat completions it served."""

    url: str
    completions: Callable[[], int]


def service_completions(url: str) -> Callable[[], int]:
    wanted = 'dl2llm_http_requests_total{method="POST",route="/v1/chat/completions",status="200"}'

    def count() -> int:
        for line in httpx.get(f"{url}/metrics").text.splitlines():
            if line.startswith(wanted):
                return int(float(line.split()[-1]))
        return 0

    return count


def log_completions(log: Path) -> Callable[[], int]:
    return lambda: log.read_text().count('"POST /v1/chat/completions HTTP/1.1" 200')


def llama_cpp_server(folder: Path) -> Iterator[Upstream]:
    """``python -m llama_cpp.server`` on the GGUF, on both cores, until the test module ends."""
    port, log = free_port(), folder / "llama_cpp.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(asset_file(*GGUF)),
        "--host", "127.0.0.1", "--port", str(port), "--n_threads", "2", "--n_ctx", "4096",
    ]  # fmt: skip
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, log.read_text()[-2000:]
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "llama.cpp's server did not start"
            time.sleep(0.5)
        yield Upstream(url, log_completions(log))
    finally:
        server.terminate()
        server.wait(timeout=30)


def dl2llm_server(folder: Path) -> Iterator[Upstream]:
    data_dir = copy_index(folder)
    with TorchThreads(), BackgroundServer(Settings(str(data_dir), build_missing=False)) as up:
        wait_until_ready(up.url, timeout_s=300)
        yield Upstream(f"{up.url}/v1", service_completions(up.url))


KINDS = [
    pytest.param(
        llama_cpp_server,
        id="llama.cpp",
        marks=pytest.mark.skipif(not HAS_LLAMA_CPP, reason="llama-cpp-python is not built here"),
    ),
    pytest.param(dl2llm_server, id="dl2llm"),
]


@pytest.fixture(scope="module", params=KINDS)
def upstream(request, tmp_path_factory) -> Iterator[Upstream]:
    yield from request.param(tmp_path_factory.mktemp("upstream"))


def test_the_streamed_reply_is_the_servers_reply(upstream):
    remote = RemoteLLMGenerator(upstream.url, max_new_tokens=40)
    streamed = list(remote.generate(MESSAGES, sentences=10**6))
    body = {"messages": MESSAGES, "max_tokens": 40, "temperature": 0}
    whole = httpx.post(f"{upstream.url}/chat/completions", json=body, timeout=120).json()
    assert len(streamed) > 3  # it arrived in pieces
    assert "".join(streamed).strip() == whole["choices"][0]["message"]["content"].strip()


def test_the_service_answers_through_the_inference_server(upstream, tmp_path):
    before = upstream.completions()
    settings = Settings(
        str(copy_index(tmp_path)),
        build_missing=False,
        generator="llm",
        llm_url=upstream.url,
    )
    with TorchThreads(), BackgroundServer(settings) as service:
        ready = wait_until_ready(service.url, timeout_s=300)
        assert ready["generator"] == f"default@{upstream.url}"
        answer = httpx.post(f"{service.url}/v1/ask", json={"question": QUESTION}, timeout=120)
    assert answer.status_code == 200 and "lru_cache" in answer.json()["answer"]
    assert upstream.completions() >= before + 1  # the question was generated there


def test_an_unreachable_server_is_retried_then_named():
    remote = RemoteLLMGenerator(f"http://127.0.0.1:{free_port()}/v1")
    started = time.perf_counter()
    with pytest.raises(GenerationError, match="cannot reach http://127.0.0.1"):
        list(remote.generate(MESSAGES))
    waited = time.perf_counter() - started
    assert waited >= BACKOFF_S * (2 ** (ATTEMPTS - 1) - 1)  # 0.5 + 1 + 2 s of backoff


def test_a_refusal_is_not_retried(upstream):
    remote = RemoteLLMGenerator(upstream.url.removesuffix("/v1") + "/wrong")
    started = time.perf_counter()
    with pytest.raises(GenerationError, match="answered 404"):
        list(remote.generate(MESSAGES))
    assert time.perf_counter() - started < BACKOFF_S
