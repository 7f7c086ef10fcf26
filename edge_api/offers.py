"""`GET /v1/offers`: where the shopper can buy this product, near them.

Reads top to bottom: decode the query, locate the shopper, read the index (one
Redis round trip), then `edge_api.rank` applies the campaign's rules, ranks, signs
the links and encodes; in front of it all, `OffersFront` replays kept answers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

import msgspec
from prometheus_client import Counter
from redis.exceptions import RedisError
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cache.db import DATABASE_UNAVAILABLE
from cache.gtin import GtinError, normalize_gtin
from cache.index_reader import DeliveryHit, IndexReader, IndexRows
from cache.keys import MODE_BITS
from edge_api.campaign_store import CampaignStore
from edge_api.client_ip import client_ip_of
from edge_api.cors import cors_headers_for
from edge_api.errors import bad_parameter, error_response, validation_error
from edge_api.http_metrics import observe
from edge_api.micro_cache import MicroCache
from edge_api.offer_json import OfferPieces, answer_json
from edge_api.rank import rank
from edge_api.schemas import Campaign, Location, OffersQuery
from geo.place import Place
from geo.postal import country_at, lookup_postal_code
from geo.zones import DeliveryZones

log = logging.getLogger("nearcart.offers")
FRONT_HITS = Counter("nearcart_offers_front_hits_total", "Offers answers replayed whole from the front cache")
COALESCED = Counter("nearcart_offers_coalesced_total", "Offers answers shared with identical requests made meanwhile")
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


_NOWHERE: frozenset[str] = frozenset()


class DeliveryZoneCache:
    """Delivery-zone polygons of the retailers that have some, rebuilt when the directory changes."""

    def __init__(self) -> None:
        self.version = -1
        self.zones = DeliveryZones({})
        # Oldest first out, one at a time (clearing 50k entries at once would stall the worker).
        self._inside: OrderedDict[tuple[float, float], frozenset[str]] = OrderedDict()
        self._answers: dict[frozenset[str], frozenset[str]] = {}

    def get(self, reader: IndexReader) -> DeliveryZones:
        directory = reader.directory
        if directory.version != self.version:
            self.zones = DeliveryZones(
                {r.retailer_id: r.delivery_zones for r in directory.retailers.values() if r.delivery_zones}
            )
            self.version = directory.version
            self._inside.clear()
            self._answers.clear()
        return self.zones

    def inside(self, reader: IndexReader, lat: float, lon: float) -> frozenset[str]:
        """Retailers whose zone holds the point; shoppers of one town repeat points, so answers are kept."""
        zones = self.get(reader)
        if not zones.may_cover(lat, lon):
            return _NOWHERE  # most shoppers: nothing to keep
        found = self._inside.get((lat, lon))
        if found is None:
            if len(self._inside) >= 50_000:
                self._inside.popitem(last=False)
            found = zones.delivers_to(lat, lon)
            # Few distinct answers exist (a handful of zones): keep one object per answer, not per point.
            found = self._inside[(lat, lon)] = self._answers.setdefault(found, found)
        return found


class OffersResult(NamedTuple):
    """An answer ready to send: status, raw headers, body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def _from_response(response: Response) -> OffersResult:
    return OffersResult(response.status_code, response.raw_headers, bytes(response.body))


def _json_result(body: bytes) -> OffersResult:
    # The headers Starlette's Response(body, media_type="application/json", no-store) would send.
    return OffersResult(200, [(b"cache-control", b"no-store"), (b"content-length", str(len(body)).encode()),
                              (b"content-type", b"application/json")], body)


class OffersEndpoint:
    """The routed endpoint (HEAD, and GET when called without `OffersFront`), as an ASGI app.

    Not a request function: compiled (setup.py), a function is no `inspect.isfunction` to
    Starlette's `Route`, which would then call it as an ASGI app. An instance is one either way.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        result = await answer_offers(scope)
        response = Response(result.body, status_code=result.status)
        response.raw_headers = result.headers
        await response(scope, receive, send)


async def answer_offers(scope: Scope) -> OffersResult:
    """`/v1/offers` for one request scope (its state is the worker's `EdgeState` dict)."""
    state = scope["state"]
    settings = state["settings"]
    params = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
    try:
        query = msgspec.convert(params, OffersQuery, strict=False)
    except msgspec.ValidationError as exc:
        return _from_response(validation_error(exc, root="query"))
    try:
        gtin = normalize_gtin(query.gtin)
    except GtinError as exc:
        return _from_response(bad_parameter("gtin", str(exc)))
    if (query.lat is None) != (query.lon is None):
        return _from_response(bad_parameter("lon" if query.lon is None else "lat", "lat and lon go together"))
    campaign: Campaign | None = None
    stored = None
    if query.campaign:
        try:
            stored = await state["campaigns"].get(query.campaign)
        except DATABASE_UNAVAILABLE:
            READ_FAILURES.labels("campaign").inc()
            # Answering without the brand's include/exclude rules would break its contract: say "later".
            return _from_response(error_response(503, "campaign rules are briefly unavailable, retry shortly",
                                                 code="unavailable", headers={"Retry-After": "1"}))
        if stored is None:
            return _from_response(bad_parameter("campaign", f"no campaign {query.campaign!r}"))
        campaign = stored.campaign

    location = locate(scope, query, state)
    if query.postal_code and location.source != "postal_code":
        return _from_response(bad_parameter("postal_code", f"unknown postal code {query.postal_code!r}"))

    radius_km = query.radius_km
    if "radius_km" not in params and campaign is not None:
        radius_km = campaign.radius_km
    modes = _modes(query, campaign)
    # The Host header as sent: links in the answer point back at it.
    host = _header(scope, b"host")
    # The whole location is in the answer: a GeoIP town and a postal code can share a point, not a source.
    cache_key = (gtin, location.lat, location.lon, location.country, location.source, location.postal_code,
                 location.city, radius_km, query.limit, modes, query.campaign, stored.etag if stored else "", host)
    reader: IndexReader = state["index"]
    micro_cache: MicroCache[bytes] = state["micro_cache"]
    # Taken before reading Redis: a change announced during the read makes this answer stale at once.
    stamp = reader.stamp(gtin)
    scope[ANSWER_STAMP] = (gtin, stamp, query.campaign, stored.etag if stored else "")
    cached = micro_cache.get(cache_key, stamp, max_age(settings, reader))
    if cached is not None:
        MICRO_CACHE_HITS.inc()
        return _json_result(cached)
    MICRO_CACHE_MISSES.inc()

    # One store hit gives one or two offers; campaign retailer rules may drop some, so read more at once
    # rather than come back for them (a second round trip costs more than a longer reply).
    filtered = campaign is not None and bool(campaign.retailers.include or campaign.retailers.exclude)
    count = query.limit * 3 // 2 if filtered or not (modes & 3) == 3 else query.limit
    # Redis calls time out by themselves (the pipe's and the client's socket timeouts).
    try:
        if not reader.ready:
            if reader.healthy:
                answer = IndexRows([], [], False)
            else:
                raise RedisError("index unavailable")
        else:
            answer = await _read_index(state, reader, gtin, stamp, location, radius_km, count, modes)
    except (TimeoutError, RedisError, OSError):
        READ_FAILURES.labels("index").inc()
        stale = micro_cache.get_stale(cache_key, STALE_IF_ERROR_S)
        if stale is not None:
            return _json_result(stale)
        return _from_response(error_response(503, "offers are briefly unavailable, retry shortly",
                                             code="unavailable", headers={"Retry-After": "1"}))

    base_url = settings.public_url or f"{scope['scheme']}://{host}"
    pieces: OfferPieces = state["offer_pieces"]
    pieces.reset(reader.directory.version)
    zones = functools.partial(state["zones"].inside, reader)
    listed, short = rank(answer, location, query.limit, modes, campaign, zones, settings, base_url, gtin, pieces)
    while short and answer.truncated and count < MAX_FETCH:
        # Filters (campaign retailers, modes) left too few of the nearest stores: look further out.
        count = min(count * 4, MAX_FETCH)
        try:
            answer = await _read_index(state, reader, gtin, stamp, location, radius_km, count, modes)
        except (TimeoutError, RedisError, OSError):
            break  # the nearest part already found is still a right answer, only shorter
        listed, short = rank(answer, location, query.limit, modes, campaign, zones, settings, base_url, gtin,
                             pieces)
    body = answer_json(gtin, location, listed)
    micro_cache.put(cache_key, stamp, body)
    return _json_result(body)


async def _read_index(state: dict[str, Any], reader: IndexReader, gtin: str, stamp: Hashable, location: Location,
                      radius_km: float, count: int, modes: int) -> IndexRows:
    """The index's answer for this query; a product's delivery offers come from Redis once per stamp.

    They depend on the product alone (not on where the shopper is), so every query about it
    within `max_age` of the same data shares one read of them, kept like answers are.
    """
    known: MicroCache[list[DeliveryHit]] = state["delivery_cache"]
    delivery = known.get(gtin, stamp, max_age(state["settings"], reader))
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


def max_age(settings: Any, reader: IndexReader) -> float:
    """How long a cached answer may serve: long while changes are announced to us, short otherwise."""
    return float(settings.micro_cache_live_ttl_s if reader.changes_live else settings.micro_cache_ttl_s)


def _modes(query: OffersQuery, campaign: Campaign | None) -> int:
    bits = 0
    for mode in query.mode_list:
        bits |= MODE_BITS[mode]
    if campaign is not None:
        allowed = 0
        for mode in campaign.modes:
            allowed |= MODE_BITS[mode]
        bits &= allowed
    return bits


def locate(scope: Scope, query: OffersQuery, state: dict[str, Any]) -> Location:
    """lat/lon given > postal code > client IP through GeoIP > nothing."""
    if query.lat is not None and query.lon is not None:
        # The country only decides who delivers there; the answer claims no finer place than asked.
        country = query.country.upper() if query.country else country_at(query.lat, query.lon)
        if country is None:
            by_ip = _by_ip(scope, state)
            country = by_ip.country if by_ip else None
            scope[IP_DEPENDENT] = True
        return Location(lat=query.lat, lon=query.lon, source="query", country=country)
    if query.postal_code:
        place = lookup_postal_code(query.postal_code, (query.country or "FR").upper())
        if place is not None:
            return _location(place, "postal_code")
        return Location(source="none")
    scope[IP_DEPENDENT] = True
    place = _by_ip(scope, state)
    if place is not None:
        return _location(place, "ip")
    return Location(source="none")


def _by_ip(scope: Scope, state: dict[str, Any]) -> Place | None:
    geoip = state["geoip"]
    return geoip.lookup(client_ip_of(scope, state["settings"].trusted_proxies)) if geoip is not None else None


def _location(place: Place, source: str) -> Location:
    return Location(lat=place.lat, lon=place.lon, source=source,  # type: ignore[arg-type]
                    postal_code=place.postal_code, city=place.city, country=place.country)


# Set in the request scope when the answer depends on the client's IP (so the front must not share it).
IP_DEPENDENT = "nearcart.ip_dependent"
# (GTIN, IndexReader.stamp, campaign id, its ETag) of the data an answer was computed from, for the front.
ANSWER_STAMP = "nearcart.answer_stamp"


# (GTIN, campaign id, its ETag, response headers, body) of a whole answer.
FrontEntry = tuple[str, str, str, tuple[tuple[bytes, bytes], ...], bytes]


class OffersFront:
    """Answers `GET /v1/offers` before routing: from a cache of whole answers, else directly.

    A campaign launch sends many shoppers to one product from the same postal codes and the
    same rounded positions; they send byte-identical query strings. The whole answer (status,
    headers, body) is kept under the raw query string, Host and Origin, stamped like the
    micro-cache with the data it came from (so a stock change announced for its GTIN retires
    it at once), and with the ETag of the campaign it applied: a pushed campaign retires its
    answers as soon as this worker's campaign store has read it (within a few seconds), not
    at the end of their lifetime. Answers that depend on the client's IP (no position given)
    are never kept here.

    A request the cache cannot answer is answered here too (`answer_offers`), with what the
    middleware stack would add (per-campaign CORS headers, request metrics, a JSON 500 for
    a bug) but without its layers: on this route they cost more than the answer itself.
    Identical requests that arrive while it is computed wait for it and get the same bytes
    (unless it turns out to be an error or to depend on the client's IP: then each computes
    its own). Other methods and paths go down the stack as usual.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Answers being computed, by front key: identical requests arriving meanwhile (a TV spot's
        # first second) wait for that one instead of each asking Redis. None: not shareable.
        # Each entry lists the waiters' futures (made only when one waits: asking for the running loop costs
        # a system call).
        self._computing: dict[tuple[bytes, bytes, bytes], list[asyncio.Future[FrontEntry | None]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state")
        if scope["type"] != "http" or scope["path"] != ROUTE or scope["method"] != "GET" or not state:
            await self.app(scope, receive, send)
            return
        front: MicroCache[FrontEntry] = state["front_cache"]
        reader: IndexReader = state["index"]
        host = origin = b""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value
        key = (scope["query_string"], host, origin)
        found = front.lookup(key, max_age(state["settings"], reader))
        if found is not None and _still_true(found[0], found[1], reader, state["campaigns"]):
            FRONT_HITS.inc()
            headers, body = found[1][3:]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        waiters = self._computing.get(key)
        if waiters is not None:
            waiting: asyncio.Future[FrontEntry | None] = asyncio.get_running_loop().create_future()
            waiters.append(waiting)
            shared = await waiting
            if shared is not None:
                COALESCED.inc()
                await send({"type": "http.response.start", "status": 200, "headers": shared[3]})
                await send({"type": "http.response.body", "body": shared[4]})
                return
        mine: list[asyncio.Future[FrontEntry | None]] = []
        self._computing.setdefault(key, mine)
        shareable: FrontEntry | None = None
        try:
            started = time.perf_counter()
            status, headers, body, shareable = await self._compute(scope, key, origin)
        finally:
            # Before sending: a slow client must not hold up the requests waiting for this answer.
            if self._computing.get(key) is mine:
                del self._computing[key]
            for waiting in mine:
                if not waiting.done():  # a waiter cancelled (its client gone) leaves the others be
                    waiting.set_result(shareable)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        observe(ROUTE, "GET", status, started)

    async def _compute(self, scope: Scope, key: tuple[bytes, bytes, bytes], origin: bytes
                       ) -> tuple[int, tuple[tuple[bytes, bytes], ...], bytes, FrontEntry | None]:
        """(status, headers, body) for a request no cache held, and the entry others may share, if any."""
        try:
            status, raw_headers, body = await answer_offers(scope)
        except Exception:
            log.exception("offers answer failed")
            status, raw_headers, body = _from_response(error_response(500, "internal error"))
        if origin:
            campaigns = scope["state"]["campaigns"]
            raw_headers = [*raw_headers, *await cors_headers_for(campaigns, scope, origin.decode("latin-1"))]
        # Tuples of bytes: the collector stops tracking them, thousands of cached answers cost it nothing.
        headers = tuple(raw_headers)
        if status != 200 or scope.get(IP_DEPENDENT) or ANSWER_STAMP not in scope:
            return status, headers, body, None  # an error, or an answer that depends on this client's address
        gtin, stamp, campaign_id, etag = scope[ANSWER_STAMP]
        entry = (gtin, campaign_id, etag, headers, body)
        scope["state"]["front_cache"].put(key, stamp, entry)
        return status, headers, body, entry


def _still_true(stamp: Hashable, entry: FrontEntry, reader: IndexReader, campaigns: CampaignStore) -> bool:
    """Whether a kept answer was computed from the index data and campaign rules of now."""
    return stamp == reader.stamp(entry[0]) and (not entry[1] or campaigns.known_etag(entry[1]) == entry[2])


routes: list[BaseRoute] = [Route("/v1/offers", OffersEndpoint(), methods=["GET"], name="offers")]
