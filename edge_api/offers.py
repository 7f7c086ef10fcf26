"""`GET /v1/offers`: where the shopper can buy this product, near them.

Reads top to bottom, one module per step: decode the query (`offers_query`), locate the
shopper (`locate`), read the index (`cache.index_reader`, one Redis round trip), rank
and sign (`rank`), encode (`offer_json`). `offers_front.OffersFront` sends the answer,
and replays kept ones, in front of it all.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import TYPE_CHECKING, NamedTuple

from prometheus_client import Counter
from redis.exceptions import RedisError
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from cache.db import DATABASE_UNAVAILABLE
from cache.index_reader import DeliveryHit, IndexReader, IndexRows
from cache.keys import MODE_BITS
from edge_api.errors import bad_parameter, error_response
from edge_api.locate import locate
from edge_api.offer_json import answer_json
from edge_api.offers_query import OffersAsk, decode_offers_query
from edge_api.schemas import Campaign, Location
from edge_api.settings import Settings
from edge_api.state import state_of

if TYPE_CHECKING:
    from edge_api.state import EdgeState

MICRO_CACHE = Counter("nearcart_offers_micro_cache_total", "Offers answers from the micro-cache or not", ["result"])
MICRO_CACHE_HITS, MICRO_CACHE_MISSES = MICRO_CACHE.labels("hit"), MICRO_CACHE.labels("miss")
# Per request, not logged: a Redis outage would write thousands of lines a second.
READ_FAILURES = Counter("nearcart_offers_read_failures_total", "Offers requests whose index or campaign read failed",
                        ["source"])
# Most store hits a query may read when filters keep asking for more.
MAX_FETCH = 2000
# Seconds a cached answer may still be served while Redis is unreachable.
STALE_IF_ERROR_S = 30.0
ROUTE = "/v1/offers"

# (GTIN, IndexReader.stamp, campaign id, its ETag): the data an answer was computed from.
AnswerStamp = tuple[str, Hashable, str, str]


class OffersResult(NamedTuple):
    """An answer ready to send: status, raw headers, body, and what it was computed from.

    `shared` is None when the answer may not be given to another shopper: an error, or an
    answer that depends on this client's IP address.
    """

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    shared: AnswerStamp | None


def result_of(response: Response) -> OffersResult:
    """A Starlette response (an error's) as a result, never shared."""
    return OffersResult(response.status_code, response.raw_headers, bytes(response.body), None)


def _json_result(body: bytes, shared: AnswerStamp | None) -> OffersResult:
    # The headers Starlette's Response(body, media_type="application/json", no-store) would send.
    return OffersResult(200, [(b"cache-control", b"no-store"), (b"content-length", str(len(body)).encode()),
                              (b"content-type", b"application/json")], body, shared)


class OffersEndpoint:
    """The routed endpoint (HEAD, and GET when called without `OffersFront`), as an ASGI app.

    Not a request function: compiled (setup.py), a function is no `inspect.isfunction` to
    Starlette's `Route`, which would then call it as an ASGI app. An instance is one either way.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = state_of(scope)
        assert state is not None, "the lifespan opens the edge state before any request"
        result = await answer_offers(state, scope)
        response = Response(result.body, status_code=result.status)
        response.raw_headers = result.headers
        await response(scope, receive, send)


async def answer_offers(state: EdgeState, scope: Scope) -> OffersResult:
    """`/v1/offers` for one request scope."""
    settings = state.settings
    asked = decode_offers_query(scope["query_string"])
    if not isinstance(asked, OffersAsk):
        return result_of(asked)
    query, gtin = asked.query, asked.gtin
    campaign: Campaign | None = None
    etag = ""
    if query.campaign:
        try:
            stored = await state.campaigns.get(query.campaign)
        except DATABASE_UNAVAILABLE:
            READ_FAILURES.labels("campaign").inc()
            # Answering without the brand's include/exclude rules would break its contract: say "later".
            return result_of(error_response(503, "campaign rules are briefly unavailable, retry shortly",
                                                 code="unavailable", headers={"Retry-After": "1"}))
        if stored is None:
            return result_of(bad_parameter("campaign", f"no campaign {query.campaign!r}"))
        campaign, etag = stored.campaign, stored.etag

    location, by_ip = locate(query, scope, state.geoip, settings.trusted_proxies)
    if query.postal_code and location.source != "postal_code":
        return result_of(bad_parameter("postal_code", f"unknown postal code {query.postal_code!r}"))

    radius_km = query.radius_km
    if not asked.radius_given and campaign is not None:
        radius_km = campaign.radius_km
    modes = _modes(query.mode_list, campaign)
    # The Host header as sent: links in the answer point back at it.
    host = _header(scope, b"host")
    # The whole location is in the answer: a GeoIP town and a postal code can share a point, not a source.
    cache_key = (gtin, location.lat, location.lon, location.country, location.source, location.postal_code,
                 location.city, radius_km, query.limit, modes, query.campaign, etag, host)
    reader = state.index
    micro_cache = state.micro_cache
    # Taken before reading Redis: a change announced during the read makes this answer stale at once.
    stamp = reader.stamp(gtin)
    shared: AnswerStamp | None = None if by_ip else (gtin, stamp, query.campaign or "", etag)
    cached = micro_cache.get(cache_key, stamp, max_age(settings, reader))
    if cached is not None:
        MICRO_CACHE_HITS.inc()
        return _json_result(cached, shared)
    MICRO_CACHE_MISSES.inc()

    # One store hit gives one or two offers; campaign retailer rules may drop some, so read more at once
    # rather than come back for them (a second round trip costs more than a longer reply).
    filtered = campaign is not None and bool(campaign.retailers.include or campaign.retailers.exclude)
    count = query.limit * 3 // 2 if filtered or not (modes & 3) == 3 else query.limit
    # Redis calls time out by themselves (the pipe's socket timeout).
    try:
        if not reader.ready:
            if reader.healthy:
                answer = IndexRows([], [], False)
            else:
                raise RedisError("index unavailable")
        else:
            answer = await _read_index(state, gtin, stamp, location, radius_km, count, modes)
    except (TimeoutError, RedisError, OSError):
        READ_FAILURES.labels("index").inc()
        stale = micro_cache.get_stale(cache_key, STALE_IF_ERROR_S)
        if stale is not None:
            return _json_result(stale, shared)
        return result_of(error_response(503, "offers are briefly unavailable, retry shortly",
                                             code="unavailable", headers={"Retry-After": "1"}))

    base_url = settings.public_url or f"{scope['scheme']}://{host}"
    ranker = state.ranker
    ranker.follow(reader.directory.version)
    zones = functools.partial(state.zones.inside, reader)
    listed, short = ranker.rank(answer, location, query.limit, modes, campaign, zones, base_url, gtin)
    while short and answer.truncated and count < MAX_FETCH:
        # Filters (campaign retailers, modes) left too few of the nearest stores: look further out.
        count = min(count * 4, MAX_FETCH)
        try:
            answer = await _read_index(state, gtin, stamp, location, radius_km, count, modes)
        except (TimeoutError, RedisError, OSError):
            break  # the nearest part already found is still a right answer, only shorter
        listed, short = ranker.rank(answer, location, query.limit, modes, campaign, zones, base_url, gtin)
    body = answer_json(gtin, location, listed)
    micro_cache.put(cache_key, stamp, body)
    return _json_result(body, shared)


async def _read_index(state: EdgeState, gtin: str, stamp: Hashable, location: Location, radius_km: float,
                      count: int, modes: int) -> IndexRows:
    """The index's answer for this query; a product's delivery offers come from Redis once per stamp.

    They depend on the product alone (not on where the shopper is), so every query about it
    within `max_age` of the same data shares one read of them, kept like answers are.
    """
    reader = state.index
    known = state.delivery_cache
    delivery: list[DeliveryHit] | None = known.get(gtin, stamp, max_age(state.settings, reader))
    if location.lat is None or location.lon is None or not (modes & 3):
        if delivery is None:
            delivery = await reader.query_delivery(gtin)
            known.put(gtin, stamp, delivery)
        return IndexRows([], delivery, False)
    if delivery is not None:
        answer = await reader.query_rows(gtin, location.lat, location.lon, radius_km, count, with_delivery=False)
        return answer._replace(delivery=delivery)
    answer = await reader.query_rows(gtin, location.lat, location.lon, radius_km, count)
    known.put(gtin, stamp, answer.delivery)
    return answer


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def max_age(settings: Settings, reader: IndexReader) -> float:
    """How long a cached answer may serve: long while changes are announced to us, short otherwise."""
    return float(settings.micro_cache_live_ttl_s if reader.changes_live else settings.micro_cache_ttl_s)


def _modes(asked: tuple[str, ...], campaign: Campaign | None) -> int:
    bits = 0
    for mode in asked:
        bits |= MODE_BITS[mode]
    if campaign is not None:
        allowed = 0
        for mode in campaign.modes:
            allowed |= MODE_BITS[mode]
        bits &= allowed
    return bits


routes: list[BaseRoute] = [Route(ROUTE, OffersEndpoint(), methods=["GET"], name="offers")]
