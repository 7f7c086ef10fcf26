"""`GET /v1/offers`: where the shopper can buy this product, near them.

Reads top to bottom: decode the query, locate the shopper, read the index (one
Redis round trip), apply the campaign's rules, rank, sign the links, encode.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any, Literal

import asyncpg
import msgspec
from prometheus_client import Counter
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cache.directory import RetailerEntry
from cache.gtin import GtinError, normalize_gtin
from cache.index_reader import IndexAnswer, IndexReader, StoreHit
from cache.keys import MODE_BITS
from edge_api.client_ip import client_ip
from edge_api.errors import bad_parameter, error_response, validation_error
from edge_api.micro_cache import MicroCache
from edge_api.schemas import (
    Campaign,
    Location,
    Mode,
    Offer,
    OffersAnswer,
    OffersQuery,
    Price,
    RetailerRef,
    StoreRef,
)
from edge_api.tokens import ClickTarget, click_url, sign_click
from geo.place import Place
from geo.postal import country_at, lookup_postal_code
from geo.zones import DeliveryZones

Availability = Literal["in_stock", "low_stock"]
# At or below this many units an offer shows as "low_stock".
LOW_STOCK_MAX = 3
FRONT_HITS = Counter("nearcart_offers_front_hits_total", "Offers answers replayed whole from the front cache")
MICRO_CACHE = Counter("nearcart_offers_micro_cache_total", "Offers answers from the micro-cache or not", ["result"])
# Signed click tokens kept per worker (the secret is fixed for a worker's life).
SIGNED_LINKS_KEPT = 50_000
_signed: dict[tuple[str, ClickTarget], str] = {}
# Most store hits a query may read when filters keep asking for more.
MAX_FETCH = 2000
STORE_MODES: tuple[Mode, ...] = ("in_store", "click_collect")
# Seconds a cached answer may still be served while Redis is unreachable.
STALE_IF_ERROR_S = 30.0

_encode = msgspec.json.Encoder().encode


class DeliveryZoneCache:
    """Delivery-zone polygons of the retailers that have some, rebuilt when the directory changes."""

    def __init__(self) -> None:
        self.version = -1
        self.zones = DeliveryZones({})
        self._inside: dict[tuple[float, float], frozenset[str]] = {}
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
        found = self._inside.get((lat, lon))
        if found is None:
            if len(self._inside) >= 50_000:
                self._inside.clear()
            found = zones.delivers_to(lat, lon)
            # Few distinct answers exist (a handful of zones): keep one object per answer, not per point.
            found = self._inside[(lat, lon)] = self._answers.setdefault(found, found)
        return found


async def offers(request: Request) -> Response:
    state = request.state
    settings = state.settings
    try:
        query = msgspec.convert(dict(request.query_params), OffersQuery, strict=False)
    except msgspec.ValidationError as exc:
        return validation_error(exc, root="query")
    try:
        gtin = normalize_gtin(query.gtin)
    except GtinError as exc:
        return bad_parameter("gtin", str(exc))
    if (query.lat is None) != (query.lon is None):
        return bad_parameter("lon" if query.lon is None else "lat", "lat and lon go together")
    campaign: Campaign | None = None
    stored = None
    if query.campaign:
        try:
            stored = await state.campaigns.get(query.campaign)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            # Answering without the brand's include/exclude rules would break its contract: say "later".
            return error_response(503, "campaign rules are briefly unavailable, retry shortly", code="unavailable",
                                  headers={"Retry-After": "1"})
        if stored is None:
            return bad_parameter("campaign", f"no campaign {query.campaign!r}")
        campaign = stored.campaign

    location = locate(request, query, state)
    if query.postal_code and location.source != "postal_code":
        return bad_parameter("postal_code", f"unknown postal code {query.postal_code!r}")

    radius_km = query.radius_km
    if "radius_km" not in request.query_params and campaign is not None:
        radius_km = campaign.radius_km
    modes = _modes(query, campaign)
    # The Host header as sent: links in the answer point back at it (building request.url costs more).
    host = request.headers.get("host", "")
    cache_key = (gtin, location.lat, location.lon, location.country, radius_km, query.limit, modes,
                 query.campaign, stored.etag if stored else "", host)
    reader: IndexReader = state.index
    micro_cache: MicroCache[bytes] = state.micro_cache
    # Taken before reading Redis: a change announced during the read makes this answer stale at once.
    stamp = reader.stamp(gtin)
    request.scope[ANSWER_STAMP] = (gtin, stamp)
    cached = micro_cache.get(cache_key, stamp, max_age(settings, reader))
    if cached is not None:
        MICRO_CACHE.labels("hit").inc()
        return _json(cached)
    MICRO_CACHE.labels("miss").inc()

    # One store hit gives one or two offers; campaign retailer rules may drop some, so read more at once
    # rather than come back for them (a second round trip costs more than a longer reply).
    filtered = campaign is not None and bool(campaign.retailers.include or campaign.retailers.exclude)
    count = query.limit * 3 // 2 if filtered or not (modes & 3) == 3 else query.limit
    try:
        if not reader.ready:
            if reader.healthy:
                answer = IndexAnswer([], [], False)
            else:
                raise RedisError("index unavailable")
        elif location.lat is None or location.lon is None or not (modes & 3):
            answer = await asyncio.wait_for(reader.query_delivery(gtin), settings.redis_timeout_s * 2)
        else:
            answer = await asyncio.wait_for(
                reader.query(gtin, location.lat, location.lon, radius_km, count),
                settings.redis_timeout_s * 2,
            )
    except (TimeoutError, RedisError, OSError):
        stale = micro_cache.get_stale(cache_key, STALE_IF_ERROR_S)
        if stale is not None:
            return _json(stale)
        return error_response(503, "offers are briefly unavailable, retry shortly", code="unavailable",
                              headers={"Retry-After": "1"})

    base_url = settings.public_url or f"{request.scope['scheme']}://{host}"
    zones = functools.partial(state.zones.inside, reader)
    listed, short = rank(answer, location, query.limit, modes, campaign, zones, settings, base_url, gtin)
    while short and answer.truncated and count < MAX_FETCH:
        # Filters (campaign retailers, modes) left too few of the nearest stores: look further out.
        count = min(count * 4, MAX_FETCH)
        try:
            answer = await asyncio.wait_for(
                reader.query(gtin, location.lat or 0.0, location.lon or 0.0, radius_km, count),
                settings.redis_timeout_s * 2,
            )
        except (TimeoutError, RedisError, OSError):
            break  # the nearest part already found is still a right answer, only shorter
        listed, short = rank(answer, location, query.limit, modes, campaign, zones, settings, base_url, gtin)
    body = _encode(OffersAnswer(gtin=gtin, location=location, offers=listed))
    micro_cache.put(cache_key, stamp, body)
    return _json(body)


def max_age(settings: Any, reader: IndexReader) -> float:
    """How long a cached answer may serve: long while changes are announced to us, short otherwise."""
    return float(settings.micro_cache_live_ttl_s if reader.changes_live else settings.micro_cache_ttl_s)


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


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


def locate(request: Request, query: OffersQuery, state: Any) -> Location:
    """lat/lon given > postal code > client IP through GeoIP > nothing."""
    if query.lat is not None and query.lon is not None:
        # The country only decides who delivers there; the answer claims no finer place than asked.
        country = query.country.upper() if query.country else country_at(query.lat, query.lon)
        if country is None:
            by_ip = _by_ip(request, state)
            country = by_ip.country if by_ip else None
            request.scope[IP_DEPENDENT] = True
        return Location(lat=query.lat, lon=query.lon, source="query", country=country)
    if query.postal_code:
        place = lookup_postal_code(query.postal_code, (query.country or "FR").upper())
        if place is not None:
            return _location(place, "postal_code")
        return Location(source="none")
    request.scope[IP_DEPENDENT] = True
    place = _by_ip(request, state)
    if place is not None:
        return _location(place, "ip")
    return Location(source="none")


def _by_ip(request: Request, state: Any) -> Place | None:
    geoip = state.geoip
    return geoip.lookup(client_ip(request, state.settings.trusted_proxies)) if geoip is not None else None


def _location(place: Place, source: str) -> Location:
    return Location(lat=place.lat, lon=place.lon, source=source,  # type: ignore[arg-type]
                    postal_code=place.postal_code, city=place.city, country=place.country)


def rank(
    answer: IndexAnswer, location: Location, limit: int, modes: int, campaign: Campaign | None,
    zones: Callable[[float, float], frozenset[str]], settings: Any, base_url: str, gtin: str,
) -> tuple[list[Offer], bool]:
    """Delivery offers first (at most half the list, cheapest first), then store offers nearest first.

    A campaign's `retailers.priority` pins its retailers ahead of the others within each group.
    Offers are chosen first and built (and their links signed) only once kept. The flag says
    whether the store hits ran out before the list was full: with a truncated answer, the
    caller must then ask Redis for more.
    """
    include = set(campaign.retailers.include) if campaign else set()
    exclude = set(campaign.retailers.exclude) if campaign else set()
    priority = {rid: i for i, rid in enumerate(campaign.retailers.priority)} if campaign else {}
    campaign_id = campaign.id if campaign else ""
    # Minute granularity: links of one product near one place are signed once a minute, not per request.
    issued_at = int(time.time()) // 60 * 60
    pinned = len(priority)

    def allowed(retailer: RetailerEntry) -> bool:
        rid = retailer.retailer_id
        return (not include or rid in include) and rid not in exclude

    def link(retailer: RetailerEntry, store_id: str) -> str:
        target = ClickTarget(retailer.retailer_id, store_id, gtin, campaign_id, issued_at)
        key = (settings.secret, target)
        token = _signed.get(key)
        if token is None:
            if len(_signed) >= SIGNED_LINKS_KEPT:
                _signed.clear()
            token = _signed[key] = sign_click(settings, target)
        return click_url(base_url, token)

    listed: list[Offer] = []
    if modes & MODE_BITS["delivery"] and answer.delivery:
        inside: frozenset[str] = frozenset()
        if location.lat is not None and location.lon is not None and any(h.retailer.delivery_zones
                                                                          for h in answer.delivery):
            inside = zones(location.lat, location.lon)
        online = [
            hit for hit in answer.delivery if allowed(hit.retailer) and _delivers(hit.retailer, location, inside)
        ]
        online.sort(key=lambda hit: (priority.get(hit.retailer.retailer_id, pinned), hit.price_cents))
        listed = [
            Offer(retailer=_retailer_ref(hit.retailer), mode="delivery", store=None,
                  price=_price(hit.price_cents, hit.currency), availability=_availability(hit.quantity),
                  url=link(hit.retailer, ""))
            for hit in online[: max(1, limit // 2)]
        ]

    wanted = limit - len(listed)
    candidates: list[tuple[int, int, StoreHit, Mode]] = []
    for position, hit in enumerate(answer.stores):
        if not allowed(hit.retailer):
            continue
        rank_of = priority.get(hit.retailer.retailer_id, pinned)
        for mode in STORE_MODES:
            if hit.mode_bits & modes & MODE_BITS[mode]:
                candidates.append((rank_of, position, hit, mode))
        if not priority and len(candidates) >= wanted:
            break  # without pinned retailers Redis' nearest-first order is final
    candidates.sort(key=lambda c: (c[0], c[1]))
    refs: dict[int, tuple[StoreRef, str]] = {}
    for _, position, hit, mode in candidates[:wanted]:
        if position not in refs:
            store = hit.store
            refs[position] = (
                StoreRef(id=store.store_id, name=store.name, address=store.address, postal_code=store.postal_code,
                         city=store.city, lat=store.lat, lon=store.lon, distance_km=round(hit.distance_km, 3)),
                link(hit.retailer, store.store_id),
            )
        ref, url = refs[position]
        listed.append(Offer(retailer=_retailer_ref(hit.retailer), mode=mode, store=ref,
                            price=_price(hit.price_cents, hit.currency), availability=_availability(hit.quantity),
                            url=url))
    return listed, len(candidates) < wanted


def _delivers(retailer: RetailerEntry, location: Location, inside_zones: frozenset[str]) -> bool:
    if retailer.delivery_zones:
        return retailer.retailer_id in inside_zones
    # Nothing tells the shopper's country: show online offers rather than hide them all.
    return location.country is None or location.country in retailer.delivery_countries


def _retailer_ref(retailer: RetailerEntry) -> RetailerRef:
    return _ref(retailer.retailer_id, retailer.name, retailer.logo_url)


@functools.lru_cache(maxsize=4096)
def _ref(retailer_id: str, name: str, logo_url: str) -> RetailerRef:
    return RetailerRef(id=retailer_id, name=name, logo_url=logo_url)


@functools.lru_cache(maxsize=8192)
def _price(cents: int, currency: str) -> Price:
    return Price(amount=f"{cents // 100}.{cents % 100:02d}", currency=currency)


def _availability(quantity: int) -> Availability:
    return "low_stock" if quantity <= LOW_STOCK_MAX else "in_stock"


# Set in the request scope when the answer depends on the client's IP (so the front must not share it).
IP_DEPENDENT = "nearcart.ip_dependent"
# (GTIN, IndexReader.stamp) of the data an answer was computed from, for the front cache.
ANSWER_STAMP = "nearcart.answer_stamp"


# (GTIN, response headers, body) of a whole answer.
FrontEntry = tuple[str, tuple[tuple[bytes, bytes], ...], bytes]


class OffersFront:
    """Serves a repeated `/v1/offers` request from a cache before routing, middleware or parsing.

    A campaign launch sends many shoppers to one product from the same postal codes and the
    same rounded positions; they send byte-identical query strings. The whole answer (status,
    headers set by the CORS and other middleware, body) is kept under
    the raw query string, Host and Origin, stamped like the micro-cache with the data it came
    from (so a stock change announced for its GTIN retires it at once). Answers that depend on
    the client's IP (no position given) are never kept here. A campaign's new rules reach these
    answers within `micro_cache_live_ttl_s` (the front does not parse the query to see them).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state")
        if scope["type"] != "http" or scope["path"] != "/v1/offers" or scope["method"] != "GET" or not state:
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
        if found is not None and found[0] == reader.stamp(found[1][0]):
            FRONT_HITS.inc()
            _, headers, body = found[1]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        start: Message = {}

        async def keep(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif (message["type"] == "http.response.body" and start.get("status") == 200
                  and not message.get("more_body") and not scope.get(IP_DEPENDENT) and ANSWER_STAMP in scope):
                # Tuples of bytes: the collector stops tracking them, thousands of cached answers cost it nothing.
                gtin, stamp = scope[ANSWER_STAMP]
                front.put(key, stamp, (gtin, tuple((k, v) for k, v in start["headers"]), message["body"]))
            await send(message)

        await self.app(scope, receive, keep)


routes: list[BaseRoute] = [Route("/v1/offers", offers, methods=["GET"], name="offers")]
