"""Two ASGI guards in front of the app: a body-size limit and a concurrency limit.

A service on a 2-core machine must say "no" early and clearly instead of
queueing work it cannot finish: a request body over the limit is refused with
413 before it is read into memory, and once ``max_concurrent`` questions are
being answered the next one gets 429 Too Many Requests with a ``Retry-After``
estimated from how long recent answers took (a client should back off that
long and retry) instead of a growing queue and timeouts. 503 is kept for "not
ready yet".
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, Iterable

from dl2llm.serve.chat import error_body

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RETRY_AFTER_S = 1  # the shortest back-off asked for
NOT_READY_RETRY_S = 5  # while the index and the models load
SMOOTHING = 0.2  # weight of the newest answer in the running mean of answer times


async def send_json(send: Send, status: int, body: dict, headers: Iterable[tuple] = ()) -> None:
    """A complete JSON response from raw ASGI messages."""
    payload = json.dumps(body).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(payload)),
    ]
    raw_headers += [(k.encode(), v.encode()) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """413 for a body over ``max_bytes``: by ``Content-Length``, or while it streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        seen, exceeded, started = 0, False, False

        async def counted_receive() -> dict:
            nonlocal seen, exceeded
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                exceeded = True
                raise _TooLarge
            return message

        async def guarded_send(message: dict) -> None:
            # The app may turn _TooLarge into its own error response: answer 413 instead.
            nonlocal started
            if exceeded:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        message = f"request body is larger than the limit of {self.max_bytes} bytes"
        await send_json(send, 413, {"error": message})


class ConcurrencyLimit:
    """429 + ``Retry-After`` once ``max_concurrent`` requests to ``paths`` are in flight.

    ``Retry-After`` is the time the requests in flight need to free one slot:
    the running mean of recent answer times, times the share of slots taken,
    rounded up (at least :data:`RETRY_AFTER_S`).
    """

    def __init__(self, app: ASGIApp, max_concurrent: int, paths: Iterable[str], on_reject=None):
        self.app, self.max_concurrent = app, max_concurrent
        self.paths = tuple(paths)
        self.in_flight = 0
        self.on_reject = on_reject
        self.mean_seconds = 0.0  # exponentially weighted mean of answer times

    def retry_after(self) -> int:
        """Seconds a refused client should wait."""
        wait = self.mean_seconds * self.in_flight / self.max_concurrent
        return max(RETRY_AFTER_S, math.ceil(wait))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        if self.in_flight >= self.max_concurrent:
            if self.on_reject is not None:
                self.on_reject(scope["path"])
            message = f"server busy: {self.in_flight} questions in progress; retry shortly"
            body = error_body(scope["path"], 429, message)
            return await send_json(send, 429, body, [("retry-after", str(self.retry_after()))])
        self.in_flight += 1
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            took = time.perf_counter() - started
            self.mean_seconds += SMOOTHING * (took - self.mean_seconds)
