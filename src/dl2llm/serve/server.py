"""Running the service with uvicorn, and talking to a running one.

:func:`serve` runs until stopped (``make run``); :class:`BackgroundServer` runs
one worker in a thread of this process so a script or a test can start the
real server on a free port, send it real HTTP requests and stop it.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import httpx
import uvicorn

from dl2llm.serve.settings import Settings

APP_FACTORY = "dl2llm.serve.app:create_app_from_env"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Start ``workers`` uvicorn workers and block until interrupted."""
    os.environ.update(settings.to_env())
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=5,
        log_level="info",
    )


def wait_until_ready(base_url: str, timeout_s: float = 600) -> dict:
    """Poll ``/ready`` until it says ready; raise with its reason if loading failed."""
    deadline = time.monotonic() + timeout_s
    body: dict = {}
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base_url}/ready", timeout=5)
            body = response.json()
            if body.get("ready"):
                return body
            if body.get("error"):
                raise RuntimeError(f"service failed to load: {body['error']}")
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"service at {base_url} not ready after {timeout_s:.0f} s: {body}")


class BackgroundServer:
    """One uvicorn worker serving ``settings`` from a daemon thread."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int | None = None):
        from dl2llm.serve.app import create_app

        self.host, self.port = host, port or free_port(host)
        config = uvicorn.Config(
            create_app(settings), host=self.host, port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="dl2llm-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def _timed(client: httpx.Client, method: str, path: str, **kwargs) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = client.request(method, path, **kwargs)
    return response, 1000 * (time.perf_counter() - started)


def smoke_test(base_url: str, question: str, max_tokens: int = 32) -> dict:
    """A few real requests against a running service: status codes and latencies (ms)."""
    results: dict = {}
    with httpx.Client(base_url=base_url, timeout=300) as client:
        for name, method, path, kwargs in [
            ("health", "GET", "/health", {}),
            ("ready", "GET", "/ready", {}),
            ("page", "GET", "/", {}),
            ("ask", "POST", "/v1/ask", {"json": {"question": question, "k": 5}}),
            ("ask_empty", "POST", "/v1/ask", {"json": {"question": "  "}}),
            (
                "chat",
                "POST",
                "/v1/chat/completions",
                {
                    "json": {
                        "messages": [{"role": "user", "content": question}],
                        "max_tokens": max_tokens,
                    }
                },
            ),
            ("admin_without_key", "POST", "/v1/documents", {"json": {"id": "a.md", "text": "x"}}),
            ("metrics", "GET", "/metrics", {}),
        ]:
            response, ms = _timed(client, method, path, **kwargs)
            results[f"{name}_status"] = response.status_code
            results[f"{name}_ms"] = round(ms, 1)
            if name == "ask" and response.status_code == 200:
                body = response.json()
                results["ask_answer"] = body["answer"]
                results["ask_sources"] = [s["path"] for s in body["sources"]]
                results.update({f"ask_{k}": v for k, v in body["timings"].items()})
    return results
