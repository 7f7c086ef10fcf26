"""Request counts and latencies by route, as Prometheus metrics (served at `/metrics`).

The one implementation: `MetricsMiddleware` counts the routes behind Starlette,
`OffersFront` calls `observe` for the answers it sends itself.
"""

from __future__ import annotations

import functools
import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("nearcart_http_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram(
    "nearcart_http_request_duration_seconds",
    "Time to answer, by route",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


@functools.lru_cache(maxsize=1024)
def _children(route: str, method: str, status: int) -> tuple[Counter, Histogram]:
    # Looking a labelled child up costs more than counting: keep them (labels are bounded: route templates).
    return REQUESTS.labels(route, method, str(status)), LATENCY.labels(route)


def observe(route: str, method: str, status: int, started: float) -> None:
    """Count one answer and the time since `started` (a `time.perf_counter()` reading)."""
    requests, latency = _children(route, method, status)
    requests.inc()
    latency.observe(time.perf_counter() - started)


class MetricsMiddleware:
    """Counts and times every answer by route template (`/v1/go/{token}`, not each token: bounded labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            observe(getattr(scope.get("route"), "path", "unmatched"), scope["method"], status, start)
