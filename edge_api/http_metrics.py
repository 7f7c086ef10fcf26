"""Request counts and latencies by route, as Prometheus metrics (served at `/metrics`)."""

from __future__ import annotations

import functools
import time

from prometheus_client import Counter, Histogram

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
