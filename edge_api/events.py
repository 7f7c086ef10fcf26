"""`POST /v1/events`: widget beacons, checked and appended to the Redis event stream.

The body is read with a cap (never unbounded), the count and shape come from
`schemas.Events`, and a shared Redis rate limit per truncated client IP keeps a
noisy page from flooding the stream. Nothing identifies a shopper: the stream
gets the /24 or /48 network, the country, and what the widget reported.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import msgspec
import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cache.keys import Keys
from edge_api.client_ip import client_ip
from edge_api.errors import error_response, validation_error
from edge_api.schemas import MAX_EVENTS_BYTES, Events
from edge_api.state import edge_state
from geo.privacy import truncate_ip

# Bounds the stream between two runs of the aggregator (XADD MAXLEN ~ trims in whole nodes, cheaply).
STREAM_MAXLEN = 1_000_000
EVENTS_RECEIVED = Counter("nearcart_events_received_total", "Widget events accepted", ["type"])
EVENTS_LOST = Counter("nearcart_events_lost_total", "Events that could not be written to Redis", ["source"])

_decoder = msgspec.json.Decoder(Events)


class BodyTooLarge(Exception):
    pass


async def read_capped(request: Request, cap: int) -> bytes:
    """The request body, or `BodyTooLarge` as soon as it passes `cap` bytes (whatever Content-Length claims)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise BodyTooLarge
    return bytes(body)


async def append_events(redis: aioredis.Redis, keys: Keys, events: list[Mapping[str, str | int | float]]) -> None:
    """XADD each event to the stream in one round trip."""
    pipe = redis.pipeline(transaction=False)
    for event in events:
        fields: dict[Any, Any] = dict(event)
        pipe.xadd(keys.events, fields, maxlen=STREAM_MAXLEN, approximate=True)
    await pipe.execute()


async def post_events(request: Request) -> Response:
    state = edge_state(request)
    ip = client_ip(request, state.settings.trusted_proxies)
    network = truncate_ip(ip)
    decision = await state.events_limiter.hit("ev:" + (network or "unknown"))
    limit_headers = decision.headers()
    if not decision.allowed:
        return error_response(429, "too many events, slow down", code="rate_limited", headers=limit_headers)
    try:
        body = await read_capped(request, MAX_EVENTS_BYTES)
    except BodyTooLarge:
        return error_response(
            413, f"body larger than {MAX_EVENTS_BYTES} bytes", parameter="body", headers=limit_headers
        )
    try:
        events = _decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        response = validation_error(exc)
        response.headers.update(limit_headers)
        return response
    place = state.geoip.lookup(ip) if state.geoip and ip else None
    country = (place.country or "") if place else ""
    now_ms = int(time.time() * 1000)
    records: list[Mapping[str, str | int | float]] = [
        {
            "kind": event.type,
            "campaign": event.campaign,
            "gtin": event.gtin,
            "retailer": event.retailer or "",
            "mode": event.mode or "",
            "message": event.message or "",
            "client_ts": int(event.ts),
            "ts": now_ms,
            "ip": network,
            "country": country,
        }
        for event in events
    ]
    try:
        await append_events(state.redis, state.keys, records)
    except (RedisError, OSError):
        EVENTS_LOST.labels("beacon").inc(len(records))
        return error_response(503, "events cannot be stored now, retry later", headers={"Retry-After": "5"})
    for event in events:
        EVENTS_RECEIVED.labels(event.type).inc()
    return Response(status_code=204, headers=limit_headers)


routes = [Route("/v1/events", post_events, methods=["POST"], name="events")]
