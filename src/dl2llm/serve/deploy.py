"""Starting the QA service from the command line, and its self-check.

``capstone/deployment_script.py`` parses its flags and hands them here.
:func:`service_flags` checks them (each bad value is a
:class:`~dl2llm.errors.UsageError` that says what is wrong) and resolves what is
served; :func:`service_settings` turns them into the workers' :class:`Settings`.
Then either :func:`check_once` serves in this process, sends the self-check's
real requests (:func:`~dl2llm.serve.server.smoke_test`) and stops (``--quick``,
``--exit-after-check``), or :func:`serve_and_check` serves with uvicorn until
stopped and runs the self-check from a thread once the service is ready.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dl2llm.errors import UsageError
from dl2llm.rag import build_index, default_data_dir, sample_documents, served_model
from dl2llm.rag.encoder import shared_encoder
from dl2llm.rag.milvus import parse_vector_store
from dl2llm.rag.store import INDEX_FOLDER
from dl2llm.serve.server import BackgroundServer, serve, smoke_test, wait_until_ready
from dl2llm.serve.settings import Settings

QUESTION = "What does functools.lru_cache do?"  # the self-check's question
QUICK_MAX_NEW_TOKENS = 24  # --quick: short answers
READY_TIMEOUT_S = 3600  # a first start builds the whole index before it is ready

Checks = dict[str, Any]


def service_flags(args: argparse.Namespace) -> argparse.Namespace:
    """Check the deployment flags and resolve what is served, in place; return ``args``.

    ``--vector-store`` becomes a Milvus URI (or ``None``: FAISS in-process),
    ``--llm-url`` implies ``--generator llm`` without an adapter, and
    ``generator``/``adapter`` become what is served
    (:func:`~dl2llm.rag.served_model`). ``--quick`` caps ``--max-new-tokens``.
    """
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
    if args.quick:
        args.max_new_tokens = min(args.max_new_tokens, QUICK_MAX_NEW_TOKENS)
    return args


def service_settings(args: argparse.Namespace, data_dir: Path) -> Settings:
    """The workers' :class:`Settings` from the checked flags, over the index in ``data_dir``."""
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


def results_config(args: argparse.Namespace) -> dict[str, Any]:
    """The checked flags for the results file (folders and the device left out)."""
    skipped = ("out", "data_dir", "docs", "device")
    config = {k: v for k, v in vars(args).items() if k not in skipped}
    config["adapter"] = str(args.adapter) if args.adapter else None
    return config


def data_dir_of(args: argparse.Namespace) -> Path:
    """``--data-dir``, or the default index folder."""
    return Path(args.data_dir or default_data_dir())


def check_once(args: argparse.Namespace, started: float) -> Checks:
    """Serve in this process, run the self-check, stop; return the checks.

    ``--quick``: over a 3-document index in a temporary folder, on a free port.
    ``started``: the ``time.perf_counter()`` reading at the start of the run.
    """
    if not args.quick:
        return _serve_and_check_in_process(args, started, data_dir_of(args))
    with tempfile.TemporaryDirectory(prefix="dl2llm-serve-") as tmp:
        documents, source = sample_documents()
        build_index(documents, tmp, shared_encoder(args.encoder), source=source, progress=False)
        return _serve_and_check_in_process(args, started, Path(tmp))


def _serve_and_check_in_process(args: argparse.Namespace, started: float, data_dir: Path) -> Checks:
    settings = service_settings(args, data_dir)
    with BackgroundServer(settings, args.host, None if args.quick else args.port) as server:
        ready = wait_until_ready(server.url, timeout_s=READY_TIMEOUT_S)
        checks = {
            "ready_after_s": round(time.perf_counter() - started, 2),
            "chunks": ready["chunks"],
        }
        checks.update(smoke_test(server.url, QUESTION, max_tokens=args.max_new_tokens))
    return checks


def serve_and_check(
    args: argparse.Namespace, started: float, report: Callable[[Checks], None]
) -> None:
    """Serve with ``--workers`` uvicorn workers until stopped; self-check once ready.

    The self-check runs in a daemon thread and hands its checks to ``report`` (the
    service keeps running). On a first start the index is built in the background.
    """
    data_dir = data_dir_of(args)
    first_start = args.vector_store is None and not (data_dir / INDEX_FOLDER).exists()
    if first_start and not args.no_build:
        print(f"first start: building the index in {data_dir} (a few minutes)", flush=True)
    url = f"http://{'127.0.0.1' if args.host == '0.0.0.0' else args.host}:{args.port}"
    checker = threading.Thread(target=_self_check, args=(url, started, report), daemon=True)
    checker.start()
    serve(service_settings(args, data_dir), args.host, args.port, args.workers)


def _self_check(url: str, started: float, report: Callable[[Checks], None]) -> None:
    """Once the service at ``url`` is ready: real requests, then ``report`` their checks."""
    try:
        ready = wait_until_ready(url, timeout_s=READY_TIMEOUT_S)
    except (RuntimeError, TimeoutError) as err:
        print(f"self-check skipped: {err}", flush=True)
        return
    checks = {"ready_after_s": round(time.perf_counter() - started, 2), "chunks": ready["chunks"]}
    checks.update(smoke_test(url, QUESTION))
    report(checks)
    print(f"dl2llm service ready at {url} ({ready['chunks']} chunks)", flush=True)
