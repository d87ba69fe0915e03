"""Prometheus metrics: request counts by route and status, latency histograms.

Each app has its own registry, so tests can start several apps in one process.
Route labels are the route templates (``/v1/documents/{doc_id}``), never raw
paths, which would let a client create unbounded label values. With several
uvicorn workers each worker counts its own requests.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
ROUTES = (
    "/", "/health", "/ready", "/metrics", "/openapi.json", "/docs", "/v1/ask",
    "/v1/chat/completions", "/v1/documents",
)  # fmt: skip


def route_label(path: str) -> str:
    """A bounded label for a request path."""
    if path in ROUTES:
        return path
    if path.startswith("/v1/documents/"):
        return "/v1/documents/{doc_id}"
    if path.startswith("/static/"):
        return "/static"
    return "other"


class Metrics:
    """The service's counters and histograms."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dl2llm_http_requests_total",
            "HTTP requests by method, route and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dl2llm_http_request_duration_seconds",
            "Time to the end of the response, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stage = Histogram(
            "dl2llm_rag_stage_seconds",
            "Time spent retrieving and generating",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rejected = Counter(
            "dl2llm_rejected_busy_total",
            "Requests refused with 429 by the concurrency limit",
            ["route"],
            registry=self.registry,
        )
        self.stopped = Counter(
            "dl2llm_answers_stopped_total",
            "Generations stopped early: the client disconnected, or the answer timed out",
            ["reason"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "dl2llm_ready", "1 once models and index are loaded", registry=self.registry
        )

    def exposition(self) -> bytes:
        """The text format ``/metrics`` returns."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware that counts and times every HTTP request into ``metrics``."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def watch(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = route_label(scope["path"])
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
