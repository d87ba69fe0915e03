"""The question-answering service: FastAPI routes over the RAG pipeline.

Endpoints (the schema is served at ``/openapi.json``):

- ``POST /v1/ask`` {question, k, mode[, stream]} -> {answer, sources, timings};
  with ``stream`` the answer arrives as server-sent events (``sources``, then
  ``token`` events, then ``done``), which is what the web page at ``/`` reads.
- ``POST /v1/chat/completions`` and ``GET /v1/models`` -- the OpenAI API, so
  existing clients (the ``openai`` SDK) work: a follow-up is read with the
  conversation, ``stop`` and ``max_tokens`` are honoured, ``usage`` counts real
  tokens, ``stream: true`` sends ``chat.completion.chunk`` events ending in
  ``data: [DONE]`` (with a usage chunk when ``stream_options.include_usage``),
  and errors have OpenAI's ``{"error": {"message", "type", ...}}`` shape
  (:mod:`dl2llm.serve.chat`).
- ``POST /v1/documents``, ``DELETE /v1/documents/{id}`` -- admin: they need the
  key in ``DL2LLM_API_KEY`` (``X-API-Key`` or ``Authorization: Bearer``),
  compared in constant time; with no key configured they refuse everything.
- ``GET /health`` (the process is alive), ``GET /ready`` (models and index are
  loaded; 503 with the reason until then), ``GET /metrics`` (Prometheus).

Every other error is JSON ``{"error": "what was wrong"}`` with a 4xx status for
bad input; 5xx is kept for the service's own faults and for 503 "not ready".
If generation fails mid-answer, a stream ends with an ``error`` event instead
of hanging; an answer past ``answer_timeout_s`` is stopped (504, or an ``error``
event), and so is one whose client disconnected (:mod:`dl2llm.serve.guard`).
"""

import hmac
import json
import os
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from dl2llm import __version__
from dl2llm.rag.ingest import Document, chunk_document, kind_of
from dl2llm.rag.pipeline import Prepared, RAGPipeline
from dl2llm.serve import chat
from dl2llm.serve.guard import AnswerGuard, ClientGone, GuardedStream
from dl2llm.serve.limits import NOT_READY_RETRY_S, BodySizeLimit, ConcurrencyLimit
from dl2llm.serve.metrics import Metrics, MetricsMiddleware
from dl2llm.serve.schemas import (
    AskRequest,
    AskResponse,
    ChatRequest,
    DocumentRequest,
    DocumentResponse,
    ErrorResponse,
)
from dl2llm.serve.settings import Settings, admin_key
from dl2llm.serve.state import ServiceState

STATIC = Path(__file__).parent / "static"
QUESTION_PATHS = ("/v1/ask", "/v1/chat/completions")
CHAT_K, CHAT_MODE = 5, "hybrid"
MODEL_ID = "dl2llm-rag"
MODEL_CARD = {"id": MODEL_ID, "object": "model", "created": 1764806400, "owned_by": "dl2llm"}
ERRORS = {
    400: {"model": ErrorResponse},
    401: {"model": ErrorResponse},
    413: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
    429: {"model": ErrorResponse},
    503: {"model": ErrorResponse},
    504: {"model": ErrorResponse},
}

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
bearer = HTTPBearer(auto_error=False)


def sse(data: dict | str, event: str | None = None) -> str:
    """One server-sent event."""
    payload = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"


def _sources(rag: RAGPipeline, prepared: Prepared) -> list[dict]:
    return [
        {
            "title": h.title,
            "path": h.path,
            "anchor": h.anchor,
            "url": rag.source_url(h),
            "score": h.score,
            "text": h.text,
        }
        for h in prepared.hits
    ]


def _validation_message(errors: list[dict]) -> str:
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        message = error.get("msg", "invalid")
        if error.get("type") == "json_invalid":
            message = f"invalid JSON ({error.get('ctx', {}).get('error', 'cannot parse')})"
            where = "body"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def _timings(
    prepared: Prepared, started: float, generated: float, metrics: Metrics
) -> dict[str, float]:
    now = time.perf_counter()
    metrics.stage.labels("generate").observe(now - generated)
    return {
        "retrieve_ms": round(prepared.retrieve_ms, 2),
        "generate_ms": round(1000 * (now - generated), 2),
        "total_ms": round(1000 * (now - started), 2),
    }


def _ask_events(
    rag: RAGPipeline, prepared: Prepared, started: float, metrics: Metrics, guard: AnswerGuard
) -> Iterator[str]:
    """``sources``, then one ``token`` event per piece of the answer, then ``done``
    (or an ``error`` event when generation failed or ran out of time)."""
    meta = {
        "confidence": prepared.confidence,
        "refused": prepared.refused,
        "retrieval": prepared.retrieval,
    }
    yield sse({"sources": _sources(rag, prepared), **meta}, "sources")
    generated, pieces = time.perf_counter(), []
    try:
        for piece in rag.stream(prepared):
            pieces.append(piece)
            yield sse({"text": piece}, "token")
        if guard.timed_out:
            yield sse({"error": guard.timeout_message()}, "error")
        else:
            timings = _timings(prepared, started, generated, metrics)
            yield sse({"answer": "".join(pieces).strip(), "timings": timings}, "done")
    except Exception as err:  # the stream ends with the error instead of hanging
        yield sse({"error": f"the answer failed: {err}"}, "error")
    guard.finished = True


def _chat_events(answer: chat.ChatAnswer, common: dict, guard: AnswerGuard) -> Iterator[str]:
    """OpenAI ``chat.completion.chunk`` events, then ``data: [DONE]``.

    With ``stream_options.include_usage`` every chunk carries ``usage: null``
    and one last chunk, with no choices, carries the counts (as OpenAI does).
    A failed or timed-out answer ends with an error event, then ``[DONE]``.
    """
    options = answer.request.stream_options
    with_usage = bool(options and options.include_usage)

    def chunk(delta: dict, finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        body = {**common, "object": "chat.completion.chunk", "choices": [choice]}
        return sse(body | ({"usage": None} if with_usage else {}))

    yield chunk({"role": "assistant", "content": ""})
    try:
        for piece in answer.pieces():
            yield chunk({"content": piece})
        if guard.timed_out:
            yield sse(chat.openai_error(504, guard.timeout_message()))
        else:
            yield chunk({}, answer.finish_reason)
            if with_usage:
                usage = {"choices": [], "usage": answer.usage()}
                yield sse({**common, "object": "chat.completion.chunk", **usage})
    except Exception as err:  # the stream ends with the error instead of hanging
        yield sse(chat.openai_error(500, f"the answer failed: {err}"))
    yield sse("[DONE]")
    guard.finished = True


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError):
        errors = err.errors()
        message = _validation_message(errors)
        if request.url.path.startswith(chat.OPENAI_PATHS):
            param = ".".join(str(p) for p in errors[0].get("loc", ())[1:]) if errors else None
            return JSONResponse(chat.openai_error(422, message, param or None), status_code=422)
        return JSONResponse({"error": message, "detail": jsonable_encoder(errors)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException):
        detail = err.detail if isinstance(err.detail, str) else json.dumps(err.detail)
        if err.status_code == 400 and "parsing the body" in detail:
            detail = "the request body is not valid UTF-8 JSON"
        body = chat.error_body(request.url.path, err.status_code, detail)
        return JSONResponse(body, status_code=err.status_code, headers=err.headers)

    @app.exception_handler(Exception)
    async def server_error(request: Request, err: Exception):
        traceback.print_exception(err)
        body = chat.error_body(request.url.path, 500, f"the service failed: {err}")
        return JSONResponse(body, status_code=500)


def _require_admin(
    key: Annotated[str | None, Security(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> None:
    """The admin key, compared in constant time; no configured key refuses everyone."""
    expected = admin_key()
    if expected is None:
        raise HTTPException(401, "admin endpoints are disabled: DL2LLM_API_KEY is not set")
    given = key or (credentials.credentials if credentials else "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(401, "missing or wrong API key (X-API-Key or Authorization: Bearer)")


def _add_probes(app: FastAPI, state: ServiceState, metrics: Metrics) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/health")
    def health() -> dict:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", responses={503: {"description": "not ready yet, or loading failed"}})
    def ready() -> JSONResponse:
        """Readiness: true once the index and the models are loaded; until then the phase,
        the build's ``progress`` and whether questions are ``answering`` (by BM25)."""
        metrics.ready.set(1 if state.ready else 0)
        body = {"ready": state.ready, "answering": state.answering, "phase": state.phase}
        body.update(
            error=state.error,
            progress=state.progress,
            load_s=state.load_seconds,
            worker_pid=os.getpid(),
        )
        if state.answering:
            index = state.refresh().retriever.index
            body.update(
                chunks=len(index),
                documents=len(index.documents),
                index_version=state.version,
                generator=state.pipeline.generator.name,
                min_confidence=state.pipeline.min_confidence,
            )
        return JSONResponse(body, status_code=200 if state.ready else 503)

    @app.get("/metrics", response_class=Response)
    def metrics_page() -> Response:
        """Prometheus text format: request counts, latency histograms."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def _add_question_routes(
    app: FastAPI, ready_pipeline: Callable[[], RAGPipeline], metrics: Metrics, timeout_s: float
) -> None:
    Ready = Annotated[RAGPipeline, Depends(ready_pipeline)]
    app.state.answer_timeout_s = timeout_s  # read per request (tests lower it)

    def guard_for(prepared: Prepared) -> AnswerGuard:
        return AnswerGuard(prepared, app.state.answer_timeout_s, metrics)

    @app.post("/v1/ask", response_model=AskResponse, responses=ERRORS)
    async def ask(body: AskRequest, rag: Ready, request: Request):
        """Answer a question from the documents, citing the sources as 【1】, 【2】, ..."""
        started = time.perf_counter()
        prepared = await run_in_threadpool(rag.prepare, body.question, body.k, body.mode)
        metrics.stage.labels("retrieve").observe(prepared.retrieve_ms / 1000)
        guard = guard_for(prepared)
        if body.stream:
            return GuardedStream(_ask_events(rag, prepared, started, metrics, guard), guard)
        generated = time.perf_counter()
        try:
            text = await guard.run(request, lambda: "".join(rag.stream(prepared)).strip())
        except ClientGone:
            return Response(status_code=499)
        return {
            "answer": text,
            "sources": _sources(rag, prepared),
            "confidence": prepared.confidence,
            "refused": prepared.refused,
            "retrieval": prepared.retrieval,
            "timings": _timings(prepared, started, generated, metrics),
        }

    @app.post("/v1/chat/completions", responses=ERRORS)
    async def chat_completions(body: ChatRequest, rag: Ready, request: Request):
        """OpenAI-compatible chat: the last user message is the question, read with the
        previous one when it is a follow-up."""
        question = chat.conversation_question([(m.role, m.text) for m in body.messages])
        prepared = await run_in_threadpool(rag.prepare, question, CHAT_K, CHAT_MODE)
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        common = {"id": completion_id, "created": created, "model": body.model}
        answer, guard = chat.ChatAnswer(rag, body, prepared), guard_for(prepared)
        if body.stream:
            return GuardedStream(_chat_events(answer, common, guard), guard)
        try:
            text = await guard.run(request, lambda: "".join(answer.pieces()).strip())
        except ClientGone:
            return Response(status_code=499)
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "finish_reason": answer.finish_reason}
        return {
            **common,
            "object": "chat.completion",
            "choices": [choice],
            "usage": answer.usage(),
            "sources": _sources(rag, prepared),
            "retrieval": prepared.retrieval,
        }

    @app.get("/v1/models")
    def models() -> dict:
        """OpenAI-compatible: the one model this service answers as."""
        return {"object": "list", "data": [MODEL_CARD]}

    @app.get("/v1/models/{model_id:path}", responses={404: {"model": ErrorResponse}})
    def model(model_id: str) -> dict:
        if model_id != MODEL_CARD["id"]:
            raise HTTPException(404, f"no model '{model_id}' (this service has '{MODEL_ID}')")
        return MODEL_CARD


def _add_admin_routes(
    app: FastAPI, state: ServiceState, ready_pipeline: Callable[[], RAGPipeline]
) -> None:
    def index_built(rag: Annotated[RAGPipeline, Depends(ready_pipeline)]) -> RAGPipeline:
        if not state.ready:  # answering by BM25: edits wait for the built index
            raise HTTPException(
                503,
                f"not ready for edits: still {state.phase}",
                {"Retry-After": str(NOT_READY_RETRY_S)},
            )
        return rag

    Ready = Annotated[RAGPipeline, Depends(index_built)]
    admin = [Depends(_require_admin)]

    @app.post(
        "/v1/documents",
        response_model=DocumentResponse,
        status_code=201,
        responses=ERRORS,
        dependencies=admin,
    )
    async def add_document(body: DocumentRequest, rag: Ready):
        """Admin: add or replace a document; it is searchable on return."""
        document = Document(body.id, body.text, kind_of(body.id))
        if not chunk_document(document):
            raise HTTPException(422, f"text: '{body.id}' has nothing to index beyond its title")
        chunks = await run_in_threadpool(state.add_documents, [document])
        return {"id": body.id, "chunks": chunks, "documents": len(rag.retriever.index.documents)}

    @app.delete(
        "/v1/documents/{doc_id:path}",
        responses={**ERRORS, 404: {"model": ErrorResponse}},
        dependencies=admin,
    )
    async def delete_document(doc_id: str, rag: Ready) -> dict:
        """Admin: remove a document and its chunks."""
        if not await run_in_threadpool(state.delete_document, doc_id):
            raise HTTPException(404, f"no document with id '{doc_id}' in the index")
        return {"deleted": doc_id, "documents": len(rag.retriever.index.documents)}


def create_app(settings: Settings) -> FastAPI:
    """The ASGI app; the models and index load in the background once it starts."""
    state, metrics = ServiceState(settings), Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start_loading()
        yield

    def ready_pipeline() -> RAGPipeline:
        if not state.answering:
            reason = state.error or f"still {state.phase}"
            raise HTTPException(
                503, f"not ready: {reason}", {"Retry-After": str(NOT_READY_RETRY_S)}
            )
        return state.refresh()  # another worker's edit is seen from the next request

    app = FastAPI(
        title="dl2llm domain QA service",
        version=__version__,
        description="Answers questions from a document collection with cited sources.",
        lifespan=lifespan,
    )
    app.state.service = state  # for operators and fault-injection tests
    _add_error_handlers(app)
    _add_probes(app, state, metrics)
    _add_question_routes(app, ready_pipeline, metrics, settings.answer_timeout_s)
    _add_admin_routes(app, state, ready_pipeline)
    # Added innermost first: metrics see every request, refused ones included.
    app.add_middleware(
        ConcurrencyLimit,
        max_concurrent=settings.max_concurrent,
        paths=QUESTION_PATHS,
        on_reject=lambda path: metrics.rejected.labels(path).inc(),
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def create_app_from_env() -> FastAPI:
    """``uvicorn --factory`` entry point for each worker (settings from the environment)."""
    return create_app(Settings.from_env())
