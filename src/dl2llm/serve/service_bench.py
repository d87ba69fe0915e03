"""The QA service measured from outside, as ``make run`` starts it: first start and load.

Both start ``capstone/deployment_script.py`` in its own process (:func:`service_process`) and
talk to it over HTTP only:

- :func:`first_start`: on a fresh, empty data folder, so it must build its index, how soon
  ``/health`` answers, the first real answer comes (as soon as ``/ready`` says it is
  answering, by BM25 while the dense index builds) and ``/ready`` says ready, with each
  phase ``/ready`` reports. Targets (issue 16, 2 cores): :data:`FIRST_START_TARGETS_S`.
- :func:`load_levels`: on a built index, ``c`` concurrent clients asking for a fixed time,
  for each ``c`` of :data:`CONCURRENCY`: answers per second, p50/p95 latency and 429s.
  Baseline: one client; the saturation point is the smallest concurrency whose throughput
  reaches :data:`SATURATED` of the best.

``benchmarks/bench_first_start.py`` and ``benchmarks/bench_service_load.py`` run them.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dl2llm import paths
from dl2llm.rag import sample_documents
from dl2llm.serve.server import free_port, wait_until_ready

SERVICE_SCRIPT = paths.REPO_ROOT / "capstone" / "deployment_script.py"
CONCURRENCY = (1, 2, 4, 8, 16)
SATURATED = 0.95
FIRST_START_TARGETS_S = {"health_s": 30.0, "first_answer_s": 120.0, "ready_s": 300.0}
FIRST_QUESTION = "How do I reverse a list?"
POLL_S, GIVE_UP_S = 0.5, 3600.0


@dataclass
class ServiceBenchConfig:
    """What the service benchmarks index and how long each load level lasts (``quick()``:
    the three sample documents, 3 s per level)."""

    sample_docs: bool = False  # the three sample documents instead of the bundled Python docs
    seconds_per_level: float = 20.0  # :func:`load_levels`: asking time at each concurrency

    @classmethod
    def quick(cls) -> ServiceBenchConfig:
        return cls(sample_docs=True, seconds_per_level=3.0)


@contextmanager
def service_process(arguments: list[str]) -> Iterator[str]:
    """Run the service script with ``arguments`` on a free port; yield its URL, stop it after."""
    port = free_port()
    command = [sys.executable, str(SERVICE_SCRIPT), *arguments, "--port", str(port)]
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def write_sample_docs(folder: Path) -> Path:
    """The three sample documents as files in ``folder`` (a quick run's corpus)."""
    documents, _ = sample_documents()
    for document in documents:
        (folder / document.doc_id).parent.mkdir(parents=True, exist_ok=True)
        (folder / document.doc_id).write_text(document.text)
    return folder


def poll_first_start(url: str, started: float) -> dict[str, Any]:
    """Seconds from ``started`` to ``/health``, the first answer (as soon as ``/ready`` says
    ``answering``), each ``/ready`` phase, and readiness."""
    timings: dict[str, Any] = {}
    phases: list[tuple[float, str]] = []
    with httpx.Client(base_url=url, timeout=60) as client:
        while time.perf_counter() - started < GIVE_UP_S:
            try:
                if "health_s" not in timings:
                    client.get("/health").raise_for_status()
                    timings["health_s"] = time.perf_counter() - started
                ready = client.get("/ready").json()
            except httpx.TransportError:
                time.sleep(POLL_S)
                continue
            if not phases or phases[-1][1] != ready["phase"]:
                phases.append((round(time.perf_counter() - started, 1), ready["phase"]))
            if ready.get("error"):
                raise RuntimeError(f"the service could not start: {ready['error']}")
            if ready.get("answering") and "first_answer_s" not in timings:
                answer = client.post("/v1/ask", json={"question": FIRST_QUESTION})
                timings["first_answer_s"] = time.perf_counter() - started
                timings["first_answer_status"] = answer.status_code
                timings["first_answer_retrieval"] = answer.json().get("retrieval")
                timings["first_answer_sources"] = [s["path"] for s in answer.json()["sources"]]
            if ready["ready"]:
                timings["ready_s"] = time.perf_counter() - started
                timings["chunks"] = ready["chunks"]
                return timings | {"phases": phases}
            time.sleep(POLL_S)
    raise TimeoutError(f"not ready after {GIVE_UP_S:.0f} s; phases so far: {phases}")


def first_start(folder: Path, config: ServiceBenchConfig) -> dict[str, Any]:
    """Start the service on an empty data folder under ``folder`` and time its first start.

    It indexes the bundled Python docs, or the three sample documents (``config.sample_docs``).
    Returns the timings of :func:`poll_first_start` and whether each target was met.
    """
    arguments = ["--data-dir", f"{folder}/data", "--out", f"{folder}/out"]
    if config.sample_docs:
        arguments += ["--docs", str(write_sample_docs(folder / "docs"))]
    started = time.perf_counter()
    with service_process(arguments) as url:
        metrics = poll_first_start(url, started)
    for name, target in FIRST_START_TARGETS_S.items():
        metrics[f"{name.removesuffix('_s')}_target_met"] = metrics[name] <= target
    return metrics


def drive(url: str, clients: int, seconds: float, questions: list[str]) -> dict[str, Any]:
    """``clients`` threads asking in a loop for ``seconds``: throughput and latency."""
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            n = offset
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                reply = http.post("/v1/ask", json={"question": questions[n % len(questions)]})
                with lock:
                    statuses.append(reply.status_code)
                    if reply.status_code == 200:
                        latencies.append(time.perf_counter() - started)
                n += clients

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ms = sorted(1000 * s for s in latencies)
    return {
        "clients": clients,
        "answers_per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(ms) if ms else None,
        "p95_ms": ms[int(0.95 * (len(ms) - 1))] if ms else None,
        "rejected_429": statuses.count(429),
        "errors": sum(1 for s in statuses if s not in (200, 429)),
    }


def load_levels(
    data_dir: Path, generator: str, seconds: float, questions: list[str]
) -> dict[str, Any]:
    """One worker serving the built index in ``data_dir`` with ``generator``, at every level
    of :data:`CONCURRENCY` for ``seconds``: the levels, the best throughput and where the
    service saturates."""
    arguments = ["--data-dir", str(data_dir), "--no-build", "--generator", generator]
    arguments += ["--max-concurrent", "32", "--out", str(data_dir / "out")]
    with service_process(arguments) as url:
        wait_until_ready(url, timeout_s=600)
        drive(url, 2, min(seconds, 5), questions)  # warm
        levels = [drive(url, c, seconds, questions) for c in CONCURRENCY]
    best = max(level["answers_per_s"] for level in levels)
    saturation = next(lv for lv in levels if lv["answers_per_s"] >= SATURATED * best)
    return {"levels": levels, "best_answers_per_s": best, "saturates_at": saturation["clients"]}
