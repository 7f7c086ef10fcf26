"""`POST /v1/events`: widget beacons, checked and appended to the Redis event stream.

The body is read with a cap (never unbounded), the count and shape come from
`schemas.Events`, and a shared Redis rate limit per truncated client IP keeps a
noisy page from flooding the stream. Nothing identifies a shopper: the stream
gets the region (a French département or a country, `geo.region`) and what the
widget reported; while Redis is unreachable the worker keeps them (`event_buffer`).
"""

from __future__ import annotations

import time

import msgspec
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edge_api.client_ip import client_ip
from edge_api.errors import error_response, validation_error
from edge_api.event_buffer import Record
from edge_api.schemas import MAX_EVENTS_BYTES, Events
from edge_api.state import edge_state
from geo.privacy import truncate_ip
from geo.region import region_of

EVENTS_RECEIVED = Counter("nearcart_events_received_total", "Widget events accepted", ["type"])
# Beacons of older widgets that the statistics no longer count (the server counts clicks itself).
NOT_COUNTED = frozenset({"offers_shown", "click"})
_shown_encoder = msgspec.json.Encoder()

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
    region = region_of(state.geoip.lookup(ip) if state.geoip and ip else None)
    now_ms = int(time.time() * 1000)
    records: list[Record] = [
        {
            "kind": event.type,
            "campaign": event.campaign,
            "gtin": event.gtin,
            "retailer": event.retailer or "",
            "mode": event.mode or "",
            "message": event.message or "",
            "shown": _shown_encoder.encode(event.shown or []).decode(),
            "client_ts": int(event.ts),
            "ts": now_ms,
            "region": region,
        }
        for event in events
        if event.type not in NOT_COUNTED
    ]
    if records:
        # Redis away: kept in this worker and written when it returns; the page still gets its 204.
        await state.event_buffer.append(records, "beacon")
    for event in events:
        EVENTS_RECEIVED.labels(event.type).inc()
    return Response(status_code=204, headers=limit_headers)


routes = [Route("/v1/events", post_events, methods=["POST"], name="events")]
