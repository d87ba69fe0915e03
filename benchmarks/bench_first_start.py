"""First start of the QA service: how soon the port, the first answer and readiness come.

Starts ``capstone/deployment_script.py`` (what ``make run`` starts) on a fresh,
empty data folder, so it must build its index, and polls it from outside:
``/health`` until it answers, then ``/ready`` (recording each phase it reports);
one real question as soon as ``/ready`` says it is answering (by BM25 while the
dense index builds), then ``/ready`` until it is ready. The full run indexes the bundled
Python docs; ``--quick`` indexes the three sample documents.

Targets (issue 16, 2 cores): ``/health`` <= 30 s, first answer <= 120 s,
ready <= 300 s.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from dl2llm import paths
from dl2llm.hardware import describe, machine_facts
from dl2llm.rag import sample_documents
from dl2llm.results import save_results
from dl2llm.runtime import deliverable_parser, run_main
from dl2llm.serve.server import free_port

NAME = "bench_first_start"
SCRIPT = paths.REPO_ROOT / "capstone" / "deployment_script.py"
TARGETS_S = {"health_s": 30.0, "first_answer_s": 120.0, "ready_s": 300.0}
QUESTION = "How do I reverse a list?"
POLL_S, GIVE_UP_S = 0.5, 3600.0


def write_sample_docs(folder: Path) -> Path:
    """The three sample documents as files (the quick run's corpus)."""
    documents, _ = sample_documents()
    for document in documents:
        (folder / document.doc_id).parent.mkdir(parents=True, exist_ok=True)
        (folder / document.doc_id).write_text(document.text)
    return folder


def poll(url: str, started: float) -> dict:
    """Seconds to ``/health``, the first answer (as soon as ``/ready`` says ``answering``),
    each ``/ready`` phase, and readiness."""
    timings, phases = {}, []
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
                answer = client.post("/v1/ask", json={"question": QUESTION})
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


def main(argv: list[str] | None = None) -> int:
    args = deliverable_parser(__doc__).parse_args(argv)
    facts = machine_facts()
    print(describe(facts))
    with tempfile.TemporaryDirectory(prefix="dl2llm-first-start-") as tmp:
        port = free_port()
        command = [sys.executable, str(SCRIPT), "--data-dir", f"{tmp}/data", "--port", str(port)]
        command += ["--out", f"{tmp}/out"]
        if args.quick:
            command += ["--docs", str(write_sample_docs(Path(tmp) / "docs"))]
        started = time.perf_counter()
        server = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            metrics = poll(f"http://127.0.0.1:{port}", started)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
    for name, target in TARGETS_S.items():
        metrics[f"{name.removesuffix('_s')}_target_met"] = metrics[name] <= target
    print("\n".join(f"{k:>24}  {v}" for k, v in metrics.items()))
    save_results(
        NAME,
        metrics,
        out_dir=args.out,
        config={"quick": args.quick, "machine": facts, "targets_s": TARGETS_S},
        seed=args.seed,
        quick=args.quick,
        started=started,
    )
    return 0


if __name__ == "__main__":
    run_main(main)
