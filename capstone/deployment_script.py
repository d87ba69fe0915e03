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
self-check with short answers and stops (what CI runs).
"""

import tempfile
import threading
import time
from pathlib import Path

from dl2llm.rag import (
    GENERATORS,
    build_index,
    default_data_dir,
    default_generator,
    sample_documents,
    served_model,
)
from dl2llm.rag.encoder import shared_encoder
from dl2llm.rag.index import INDEX_FOLDER
from dl2llm.rag.milvus import parse_vector_store
from dl2llm.results import save_results
from dl2llm.runtime import UsageError, check_positive, deliverable_parser, run_main, set_seed
from dl2llm.serve.server import BackgroundServer, serve, smoke_test, wait_until_ready
from dl2llm.serve.settings import Settings

QUESTION = "What does functools.lru_cache do?"


def parse(argv: list[str] | None):
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
    parser.add_argument(
        "--generator",
        choices=GENERATORS,
        default=None,
        help="evidence: the docs' own API entry and sentences, no LLM; llm: SmolLM2 picks the "
        "entry and phrases it, checked; previous: SmolLM2 on 80-word passages (default: the "
        f"best on the dev questions, {default_generator()})",
    )
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
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {args.port}")
    if args.docs is not None and not args.docs.is_dir():
        raise UsageError(f"--docs {args.docs}: no such folder")
    try:
        args.vector_store = parse_vector_store(args.vector_store)
    except ValueError as err:
        raise UsageError(str(err)) from err
    if not args.answer_timeout > 0:
        raise UsageError(
            f"--answer-timeout must be a positive number of seconds, got {args.answer_timeout}"
        )
    if args.adapter is not None and not args.adapter.is_file():
        raise UsageError(f"--adapter {args.adapter}: no such file")
    if args.adapter is not None and args.no_adapter:
        raise UsageError("--adapter and --no-adapter contradict each other: choose one")
    if args.llm_url is not None:
        if not args.llm_url.startswith(("http://", "https://")):
            raise UsageError(f"--llm-url {args.llm_url}: give an http(s):// address")
        if args.adapter is not None:
            raise UsageError("--adapter loads into a local model; it cannot go with --llm-url")
        args.generator, args.no_adapter = args.generator or "llm", True
    args.generator, args.adapter = served_model(args.generator, args.adapter, args.no_adapter)
    return args


def settings_from(args, data_dir: Path) -> Settings:
    return Settings(
        data_dir=str(data_dir),
        docs=str(args.docs) if args.docs else None,
        llm=args.llm,
        adapter=str(args.adapter) if args.adapter else None,
        llm_url=args.llm_url,
        encoder=args.encoder,
        vector_store=args.vector_store,
        generator=args.generator,
        build_missing=not args.no_build,
        max_new_tokens=args.max_new_tokens,
        max_concurrent=args.max_concurrent,
        answer_timeout_s=args.answer_timeout,
    )


def record(args, checks: dict, started: float) -> None:
    config = {k: v for k, v in vars(args).items() if k not in ("out", "data_dir", "docs", "device")}
    config["adapter"] = str(args.adapter) if args.adapter else None
    print("\n".join(f"{k:>28}  {v}" for k, v in checks.items()))
    save_results(
        "deployment_script",
        checks,
        out_dir=args.out,
        config=config,
        seed=args.seed,
        quick=args.quick,
        started=started,
    )


def check_and_exit(args, started: float, data_dir: Path) -> int:
    """Serve in this process, run the self-check, stop (``--quick``, ``--exit-after-check``)."""
    settings = settings_from(args, data_dir)
    with BackgroundServer(settings, args.host, None if args.quick else args.port) as server:
        ready = wait_until_ready(server.url, timeout_s=3600)
        checks = {
            "ready_after_s": round(time.perf_counter() - started, 2),
            "chunks": ready["chunks"],
        }
        checks.update(smoke_test(server.url, QUESTION, max_tokens=args.max_new_tokens))
    record(args, checks, started)
    return 0


def quick(args, started: float) -> int:
    """A 3-document index in a temporary folder, served on a free port, checked, stopped."""
    with tempfile.TemporaryDirectory(prefix="dl2llm-serve-") as tmp:
        documents, source = sample_documents()
        build_index(documents, tmp, shared_encoder(args.encoder), source=source, progress=False)
        return check_and_exit(args, started, Path(tmp))


def self_check(args, url: str, started: float) -> None:
    """Once the service is ready: real requests, results JSON (the service keeps running)."""
    try:
        ready = wait_until_ready(url, timeout_s=3600)
    except (RuntimeError, TimeoutError) as err:
        print(f"self-check skipped: {err}", flush=True)
        return
    checks = {"ready_after_s": round(time.perf_counter() - started, 2), "chunks": ready["chunks"]}
    checks.update(smoke_test(url, QUESTION))
    record(args, checks, started)
    print(f"dl2llm service ready at {url} ({ready['chunks']} chunks)", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    set_seed(args.seed)
    if args.quick:
        args.max_new_tokens = min(args.max_new_tokens, 24)
        return quick(args, started)
    data_dir = Path(args.data_dir or default_data_dir())
    if args.exit_after_check:
        return check_and_exit(args, started, data_dir)
    first_start = args.vector_store is None and not (data_dir / INDEX_FOLDER).exists()
    if first_start and not args.no_build:
        print(f"first start: building the index in {data_dir} (a few minutes)", flush=True)
    url = f"http://{'127.0.0.1' if args.host == '0.0.0.0' else args.host}:{args.port}"
    checker = threading.Thread(target=self_check, args=(args, url, started), daemon=True)
    checker.start()
    serve(settings_from(args, data_dir), args.host, args.port, args.workers)
    return 0


if __name__ == "__main__":
    run_main(main)
