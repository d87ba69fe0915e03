"""Stopping answers nobody waits for: a client that went away, an answer past its time.

Generation runs in a worker thread, so cancelling the request's coroutine does
not stop it: the model would go on for seconds, holding its concurrency slot
and a core. Each question carries an event (:attr:`Prepared.cancel`) that the
language model checks at every token (a ``StoppingCriteria``); the helpers
here set it when

- the client disconnects (a non-streamed answer polls for the disconnect; a
  streamed one notices when Starlette stops sending it), or
- ``timeout_s`` passes: a non-streamed answer becomes 504, a streamed one ends
  with an error event.

Either way the slot is freed once the model has stopped, within a token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

from fastapi import HTTPException, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from dl2llm.rag.pipeline import Prepared
from dl2llm.serve.metrics import Metrics

POLL_S = 0.1  # how often a non-streamed answer checks for a disconnected client


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


class AnswerGuard:
    """One answer's deadline and cancel switch."""

    def __init__(self, prepared: Prepared, timeout_s: float, metrics: Metrics):
        self.prepared, self.timeout_s, self.metrics = prepared, timeout_s, metrics
        self.deadline = time.monotonic() + timeout_s
        self.finished = False  # set by a stream that sent its last event

    def stop(self, reason: str) -> None:
        """Stop the generation (``reason``: ``disconnect`` or ``timeout``), once."""
        if not self.prepared.cancel.is_set():
            self.prepared.cancel.set()
            self.metrics.stopped.labels(reason).inc()

    @property
    def timed_out(self) -> bool:
        return time.monotonic() > self.deadline

    def timeout_message(self) -> str:
        return f"the answer took longer than the limit of {self.timeout_s:g} s"

    async def stop_at_deadline(self) -> None:
        await asyncio.sleep(max(0.0, self.deadline - time.monotonic()))
        self.stop("timeout")

    async def run(self, request: Request, produce: Callable[[], str]) -> str:
        """``produce()`` in a worker thread, stopped by a disconnect or the deadline.

        Raises :class:`ClientGone`, or ``HTTPException(504)`` on time out.
        """
        task = asyncio.ensure_future(run_in_threadpool(produce))
        while not task.done():
            await asyncio.wait({task}, timeout=POLL_S)
            if task.done():
                break
            if self.timed_out:
                self.stop("timeout")
                await task  # the model stops at its next token
                raise HTTPException(504, self.timeout_message())
            if await request.is_disconnected():
                self.stop("disconnect")
                await task
                raise ClientGone
        return task.result()


class GuardedStream(StreamingResponse):
    """Server-sent events whose generation stops when the client leaves or time runs out.

    The event generator marks ``guard.finished`` after its last event; a stream
    that ends without it was abandoned by the client.
    """

    def __init__(self, events: Iterator[str], guard: AnswerGuard):
        super().__init__(events, media_type="text/event-stream")
        self.guard = guard

    async def __call__(self, scope, receive, send) -> None:
        deadline = asyncio.ensure_future(self.guard.stop_at_deadline())
        try:
            await super().__call__(scope, receive, send)
        finally:
            deadline.cancel()
            if not self.guard.finished:
                self.guard.stop("disconnect")
