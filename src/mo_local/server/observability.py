"""One structured log line and Prometheus metrics per request — ids, sizes and timings only.

Never logged: record bytes, vault blobs, tokens, passwords, emails (INV-015). The
handlers report what a request touched through `RequestFacts`; the middleware
writes the line after the response.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_FACTS_KEY = "mo_local.facts"
_access_log = logging.getLogger("mo_local.server.access")
_MAX_CACHED_SERIES = 512


@dataclass
class RequestFacts:
    """What a request touched, filled in by its handler (a per-request accumulator)."""

    store_id: str | None = None
    records: int | None = None
    bytes: int | None = None


async def request_facts(request: Request) -> RequestFacts:
    """The facts object of the current request (a FastAPI dependency)."""
    return facts_of(request)


def facts_of(request: Request) -> RequestFacts:
    """The facts object of a request, created on first use."""
    facts = request.scope.get(_FACTS_KEY)
    if not isinstance(facts, RequestFacts):
        facts = RequestFacts()
        request.scope[_FACTS_KEY] = facts
    return facts


class Metrics:
    """The app's Prometheus collectors, in a registry of its own (no global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mo_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mo_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.records_pushed = Counter(
            "mo_records_pushed", "Records newly stored by pushes", registry=self.registry
        )
        self.bytes_pushed = Counter(
            "mo_record_bytes_pushed", "Bytes of records newly stored", registry=self.registry
        )
        self.records_pulled = Counter(
            "mo_records_pulled", "Records served by pulls", registry=self.registry
        )
        self.bytes_pulled = Counter(
            "mo_record_bytes_pulled", "Bytes of records served by pulls", registry=self.registry
        )
        self.long_polls = Gauge(
            "mo_long_polls_waiting", "Pulls currently waiting for a push", registry=self.registry
        )


class ObservabilityMiddleware:
    """Times every HTTP request, counts it, and logs one line about it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # The labelled series of each (method, route, status), looked up once: finding
        # them through `labels()` on every request cost more than recording the values.
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request and record it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        facts = RequestFacts()
        scope[_FACTS_KEY] = facts
        status = 500

        async def send_and_capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_capture)
        finally:
            duration = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            series = self._series.get((method, route, status))
            if series is None:
                series = (
                    self.metrics.requests.labels(method, route, str(status)),
                    self.metrics.latency.labels(method, route),
                )
                if len(self._series) < _MAX_CACHED_SERIES:  # odd methods: no unbounded cache
                    self._series[(method, route, status)] = series
            series[0].inc()
            series[1].observe(duration)
            _access_log.info(
                "request method=%s route=%s status=%d duration_ms=%.2f store_id=%s "
                "records=%s bytes=%s",
                method,
                route,
                status,
                duration * 1000,
                facts.store_id or "-",
                "-" if facts.records is None else facts.records,
                "-" if facts.bytes is None else facts.bytes,
                extra={
                    "http_method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration * 1000, 3),
                    "store_id": facts.store_id,
                    "records": facts.records,
                    "bytes": facts.bytes,
                },
            )
