"""What an SRE's probes and Prometheus read: `/healthz`, `/readyz`, `/metrics`.

`/healthz` only says the process answers (restart me if not); `/readyz` says
whether this worker can serve offers now (Redis and PostgreSQL reachable, an
index live), so a load balancer can take it out without killing it.
Metrics are per worker process; Prometheus sums the workers it scrapes.
"""

from __future__ import annotations

import asyncio

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cache.db import DATABASE_UNAVAILABLE
from cache.index_live import live_index
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
    whole = False
    try:
        await state.redis.ping()
        checks["redis"] = "ok"
        # This worker's reader notices a lost index within its refresh period; Redis knows at once.
        whole = await live_index(state.redis, state.keys) is not None
    except (RedisError, OSError) as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    try:
        async with asyncio.timeout(state.settings.database_timeout_s):
            await state.db.fetchval("SELECT 1")
        checks["postgresql"] = "ok"
    except DATABASE_UNAVAILABLE as exc:
        checks["postgresql"] = f"unreachable: {type(exc).__name__}"
    checks["index"] = "ok" if state.index.ready and whole else "no live index"
    if state.drain.active:
        checks["shutdown"] = "draining: this worker is stopping"
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

