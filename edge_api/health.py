"""What an SRE's probes and Prometheus read: `/healthz`, `/readyz`, `/metrics`.

`/healthz` only says the process answers (restart me if not); `/readyz` says
whether this worker can serve offers now (Redis and PostgreSQL reachable, an
index live), so a load balancer can take it out without killing it.
Metrics are per worker process; Prometheus sums the workers it scrapes.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cache.db import DATABASE_UNAVAILABLE
from edge_api.http_metrics import observe
from edge_api.quality_metrics import GAUGES
from edge_api.schemas import Health
from edge_api.state import edge_state

_encoder = msgspec.json.Encoder()
NO_STORE = {"Cache-Control": "no-store"}


async def healthz(request: Request) -> Response:
    return Response(_encoder.encode(Health(status="ok")), media_type="application/json", headers=NO_STORE)


async def readyz(request: Request) -> Response:
    state = edge_state(request)
    checks: dict[str, str] = {}
    try:
        await state.redis.ping()
        checks["redis"] = "ok"
    except (RedisError, OSError) as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    try:
        async with asyncio.timeout(state.settings.database_timeout_s):
            await state.db.fetchval("SELECT 1")
        checks["postgresql"] = "ok"
    except DATABASE_UNAVAILABLE as exc:
        checks["postgresql"] = f"unreachable: {type(exc).__name__}"
    checks["index"] = "ok" if state.index.ready and checks["redis"] == "ok" else "no live index"
    ready = all(value == "ok" for value in checks.values())
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    return Response(
        _encoder.encode(body), status_code=200 if ready else 503, media_type="application/json", headers=NO_STORE
    )


async def metrics(request: Request) -> Response:
    state = edge_state(request)
    await GAUGES.refresh(state.db, state.settings.quality_cache_s, state.settings.database_timeout_s)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST, headers=NO_STORE)


routes = [
    Route("/healthz", healthz, methods=["GET"], name="healthz"),
    Route("/readyz", readyz, methods=["GET"], name="readyz"),
    Route("/metrics", metrics, methods=["GET"], name="metrics"),
]


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
