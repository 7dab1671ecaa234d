"""Prometheus metrics of one app (its own registry, so that several apps in one process,
as in tests, count apart): requests by route and status, their latency, decisions by
status and code, webhook deliveries and event-stream subscribers. ``/metrics`` (admin
key) renders them in the text format."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from escrowkit.coordinator import SpendResult

__all__ = ["CONTENT_TYPE", "Metrics", "MetricsMiddleware"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The app's counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "escrowkit_http_requests",
            "HTTP requests answered, by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "escrowkit_http_request_seconds",
            "Time to answer an HTTP request (to the end of its headers), by route template",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self.decisions = Counter(
            "escrowkit_decisions",
            "Spend decisions made through the service (HTTP and MCP), by status and code",
            ["status", "code"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "escrowkit_webhook_deliveries",
            "Webhook delivery attempts, by outcome (delivered, failed)",
            ["outcome"],
            registry=self.registry,
        )
        self.subscribers = Gauge(
            "escrowkit_event_subscribers",
            "Open /v1/events streams",
            registry=self.registry,
        )

        # Each label set's child, kept: ``labels()`` validates and locks on every call,
        # and three of them ran per spend.
        self._children: dict[tuple[object, ...], Any] = {}

    def _child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        found = self._children.get((metric, *labels))
        if found is None:
            found = self._children.setdefault((metric, *labels), metric.labels(*labels))
        return found

    def answered(self, method: str, route: str, status: int) -> None:
        self._child(self.requests, method, route, str(status)).inc()

    def timed(self, route: str, seconds: float) -> None:
        self._child(self.latency, route).observe(seconds)

    def decided(self, result: SpendResult) -> None:
        code = "" if result.code is None else result.code.value
        self._child(self.decisions, result.status.value, code).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts every HTTP request by its route template (never its path: ids would make
    unbounded label sets, and a path may hold whatever a client sent)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self.metrics.timed(_template(scope), time.perf_counter() - began)
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.answered(scope["method"], _template(scope), status)


def _template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
