"""Where the QA service saturates on this machine: throughput and latency against concurrency.

Starts ``capstone/deployment_script.py`` (one worker, the cached index of the
Python docs) in its own process and sends it questions from ``c`` concurrent
clients for a fixed time, for ``c`` = 1, 2, 4, 8, 16: answers per second,
p50/p95 latency and 429s. It does so twice: with the evidence answer (what
``make run`` serves: retrieval and ONNX sentence scoring) and with SmolLM2
phrasing the answer (``--generator llm``), whose generation dominates.

Baseline: one client (``c = 1``) in the same run; the saturation point is the
smallest concurrency whose throughput reaches 95% of the best.
"""

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from dl2llm import paths
from dl2llm.evaluation.questions import answerable
from dl2llm.hardware import describe, machine_facts
from dl2llm.rag import default_data_dir, sample_documents
from dl2llm.rag.encoder import shared_encoder
from dl2llm.rag.index import build_index
from dl2llm.results import save_results
from dl2llm.runtime import deliverable_parser, run_main
from dl2llm.serve.server import free_port, wait_until_ready

NAME = "bench_service_load"
SCRIPT = paths.REPO_ROOT / "capstone" / "deployment_script.py"
CONCURRENCY = (1, 2, 4, 8, 16)
SATURATED = 0.95


def drive(url: str, clients: int, seconds: float, questions: list[str]) -> dict:
    """``clients`` threads asking in a loop for ``seconds``: throughput and latency."""
    latencies, statuses, lock = [], [], threading.Lock()
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


def measure(data_dir: Path, generator: str, seconds: float, questions: list[str]) -> dict:
    port = free_port()
    command = [sys.executable, str(SCRIPT), "--data-dir", str(data_dir), "--port", str(port)]
    command += ["--no-build", "--generator", generator, "--max-concurrent", "32"]
    command += ["--out", str(data_dir / "out")]
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, timeout_s=600)
        drive(url, 2, min(seconds, 5), questions)  # warm
        levels = [drive(url, c, seconds, questions) for c in CONCURRENCY]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    best = max(level["answers_per_s"] for level in levels)
    saturation = next(lv for lv in levels if lv["answers_per_s"] >= SATURATED * best)
    return {"levels": levels, "best_answers_per_s": best, "saturates_at": saturation["clients"]}


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=None, help="per level (full: 20)")
    args = parser.parse_args(argv)
    facts = machine_facts()
    print(describe(facts))
    started = time.perf_counter()
    seconds = args.seconds or (3.0 if args.quick else 20.0)
    questions = [q.question for q in answerable()]
    with tempfile.TemporaryDirectory(prefix="dl2llm-load-") as tmp:
        data_dir = default_data_dir()
        if args.quick:
            documents, source = sample_documents()
            data_dir = Path(tmp)
            build_index(documents, data_dir, shared_encoder(), source=source, progress=False)
        metrics = {}
        for generator in ("evidence", "llm"):
            metrics[generator] = measure(data_dir, generator, seconds, questions)
            print(generator, metrics[generator]["best_answers_per_s"], "answers/s at",
                  metrics[generator]["saturates_at"], "clients")  # fmt: skip
    save_results(
        NAME,
        metrics,
        out_dir=args.out,
        config={"quick": args.quick, "machine": facts, "seconds_per_level": seconds},
        seed=args.seed,
        quick=args.quick,
        started=started,
    )
    return 0


if __name__ == "__main__":
    run_main(main)
