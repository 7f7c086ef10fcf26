"""The floor of a computed offers answer: the bare route plus the one GEOSEARCH `/v1/offers` makes.

Served like `bare_app` (same uvicorn settings, same `/v1/offers` path and query), it reads
`gtin`, `lat` and `lon`, asks the live index the question the offers route asks for the demo
campaign (stores within 20 km, nearest 30, with distances) through the same `RedisPipe`, and
answers with the nearest distance found. No validation, location, caches, ranking or encoding
of offers: whatever `/v1/offers` costs beyond this row is all of that. Run with the
`NEARCART_*` variables of a stack: `python -m loadtest.geo_floor_app --port 8002`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cache.keys import Keys
from cache.redis_pipe import RedisPipe
from cache.tasks import stop_task
from edge_api import gc_policy
from edge_api.settings import load_settings
from loadtest.bare_app import serve

# What the offers route asks Redis for the demo campaign (radius_km 20; its include/exclude rules
# make it read half as many stores again as the 20 offers an answer lists).
RADIUS_KM = 20
COUNT = 30


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    settings = load_settings()
    keys = Keys(settings.redis_prefix)
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        version = int(await client.get(keys.version) or 0)
    finally:
        await client.aclose()
    pipe = RedisPipe(settings.redis_url, timeout_s=settings.redis_timeout_s)
    # The server's garbage-collector policy too: the floor must not pay pauses the server does not.
    gc_policy.settle_for_serving()
    young_collector = asyncio.create_task(gc_policy.collect_young_forever())
    try:
        yield {"pipe": pipe, "keys": keys, "version": version}
    finally:
        await stop_task(young_collector)
        pipe.close()


async def offers(request: Request) -> Response:
    state, query = request.state, request.query_params
    gtin = query.get("gtin", "")
    (rows,) = await state.pipe.execute(("GEOSEARCH", state.keys.store_offers(state.version, gtin), "FROMLONLAT",
                                        query.get("lon"), query.get("lat"), "BYRADIUS", RADIUS_KM, "km", "ASC",
                                        "COUNT", COUNT, "WITHDIST"))
    return JSONResponse({"gtin": gtin, "offers": [float(rows[0][1])] if rows else []})


async def ready(request: Request) -> Response:
    return JSONResponse({"status": "ok", "index_version": request.state.version})


app = Starlette(routes=[Route("/v1/offers", offers), Route("/readyz", ready)], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    serve("loadtest.geo_floor_app:app", args.port)


if __name__ == "__main__":
    main()
