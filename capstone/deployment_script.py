"""Deploy the domain QA service: FastAPI + uvicorn over the RAG pipeline.

    python capstone/deployment_script.py                 # 127.0.0.1:8000, builds the index once
    DL2LLM_API_KEY=secret python capstone/deployment_script.py --port 9000 --workers 2

On a first start the port opens at once (``/health`` answers, ``/ready``
reports the phase and progress, the web page shows it) and questions are
answered by BM25 while the dense index is built in the background with every
core; with ``--workers N`` one worker builds while the others wait for it.
Uploads are journaled and every index change is a new version behind an atomic
pointer, so a crash loses nothing acknowledged (see :mod:`dl2llm.rag.store`).

The service answers questions about the Python 3.11 documentation (or any
folder given with ``--docs``) at ``POST /v1/ask`` and the OpenAI-compatible
``POST /v1/chat/completions``, shows a web page at ``/``, and reports
``/health``, ``/ready`` and Prometheus ``/metrics``. Admin endpoints need the
key in ``DL2LLM_API_KEY`` and refuse every request when it is unset.

Once the service is ready, a self-check sends it a few real requests and writes
their status codes and latencies to ``<out>/deployment_script.json``; the
service keeps running (``--exit-after-check`` stops it instead, as ``dl2llm run``
does). ``--quick`` starts it on a free port over a 3-document index, runs the
self-check with short answers and stops (what CI runs). The code: src/dl2llm/serve/
(deploy.py checks the flags and runs the self-check; app.py is the service).
"""

from pathlib import Path

from dl2llm.rag import add_generator_flag
from dl2llm.runtime import ArgumentParser, check_positive, deliverable_parser, run_main, start_run
from dl2llm.serve.deploy import Checks, check_once, results_config, serve_and_check, service_flags

NAME = "deployment_script"


def build_parser() -> ArgumentParser:
    """The deployment flags (checked later by :func:`dl2llm.serve.deploy.service_flags`)."""
    parser = deliverable_parser(__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--workers", type=check_positive, default=1, help="uvicorn workers")
    parser.add_argument("--data-dir", type=Path, default=None, help="index folder (default: cache)")
    parser.add_argument("--docs", type=Path, default=None, help="folder to index (default: docs)")
    parser.add_argument("--llm", default=None, help="LLM folder or hub name (default: SmolLM2)")
    parser.add_argument(
        "--adapter",
        type=Path,
        default=None,
        help="LoRA adapter file for the LLM (default for --generator llm: the committed one, "
        "when it beat the base model on the dev questions)",
    )
    parser.add_argument("--no-adapter", action="store_true", help="serve the base LLM")
    parser.add_argument(
        "--llm-url",
        default=None,
        help="an OpenAI-compatible server (vLLM, TGI, llama.cpp) that runs the LLM, e.g. "
        "http://gpu-host:8000/v1; --llm names its model; implies --generator llm",
    )
    parser.add_argument("--encoder", default=None, help="encoder folder (default: MiniLM)")
    parser.add_argument(
        "--vector-store",
        default="faiss",
        help="where the index lives: faiss (in this process, default), milvus://<file>.db "
        "(Milvus Lite) or milvus://<host>:<port> (a Milvus server shared by several services)",
    )
    add_generator_flag(parser)
    parser.add_argument("--max-new-tokens", type=check_positive, default=128)
    parser.add_argument(
        "--max-concurrent",
        type=check_positive,
        default=8,
        help="questions answered at once; more get 429 with Retry-After (default 8)",
    )
    parser.add_argument(
        "--answer-timeout",
        type=float,
        default=120.0,
        help="seconds before an answer still generating is stopped: 504 (default 120)",
    )
    parser.add_argument("--no-build", action="store_true", help="fail if the index is missing")
    parser.add_argument(
        "--exit-after-check",
        action="store_true",
        help="stop after the self-check (one worker) instead of serving on",
    )
    return parser


def parse(argv: list[str] | None):
    """The flags as :func:`main` runs with them, checked and resolved (the tests read them)."""
    return service_flags(build_parser().parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    run = start_run(NAME, build_parser(), argv)
    args = service_flags(run.args)

    def report(checks: Checks) -> None:
        """The self-check's status codes and latencies, printed and saved."""
        print("\n".join(f"{k:>28}  {v}" for k, v in checks.items()))
        run.save(checks, config=results_config(args))

    if args.quick or args.exit_after_check:
        report(check_once(args, run.started))
    else:
        serve_and_check(args, run.started, report)  # until stopped; the self-check reports
    return 0


if __name__ == "__main__":
    run_main(main)
