"""`GET /v1/offers`: where the shopper can buy this product, near them.

Reads top to bottom: decode the query, locate the shopper, read the index (one
Redis round trip), apply the campaign's rules, rank, sign the links, encode.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

import asyncpg
import msgspec
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cache.directory import RetailerEntry
from cache.gtin import GtinError, normalize_gtin
from cache.index_reader import IndexAnswer, IndexReader
from cache.keys import MODE_BITS
from edge_api.client_ip import client_ip
from edge_api.errors import bad_parameter, error_response, validation_error
from edge_api.micro_cache import MicroCache
from edge_api.schemas import (
    Campaign,
    Location,
    Offer,
    OffersAnswer,
    OffersQuery,
    Price,
    RetailerRef,
    StoreRef,
)
from edge_api.tokens import ClickTarget, click_url, sign_click
from geo.place import Place
from geo.postal import lookup_postal_code
from geo.zones import DeliveryZones

Availability = Literal["in_stock", "low_stock"]
# At or below this many units an offer shows as "low_stock".
LOW_STOCK_MAX = 3
# Store offers fetched per query beyond `limit`, for campaign filters and mode splits to drop.
FETCH_FACTOR = 3
STORE_MODES = ("in_store", "click_collect")
# Seconds a cached answer may still be served while Redis is unreachable.
STALE_IF_ERROR_S = 30.0

_encode = msgspec.json.Encoder().encode


class DeliveryZoneCache:
    """Delivery-zone polygons of the retailers that have some, rebuilt when the directory changes."""

    def __init__(self) -> None:
        self.version = -1
        self.zones = DeliveryZones({})

    def get(self, reader: IndexReader) -> DeliveryZones:
        directory = reader.directory
        if directory.version != self.version:
            self.zones = DeliveryZones(
                {r.retailer_id: r.delivery_zones for r in directory.retailers.values() if r.delivery_zones}
            )
            self.version = directory.version
        return self.zones


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
    cache_key = (gtin, location.lat, location.lon, location.country, radius_km, query.limit, modes,
                 query.campaign, request.url.netloc)
    reader: IndexReader = state.index
    micro_cache: MicroCache = state.micro_cache
    cached = micro_cache.get(cache_key, reader.version)
    if cached is not None:
        return _json(cached)

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
                reader.query(gtin, location.lat, location.lon, radius_km, query.limit * FETCH_FACTOR),
                settings.redis_timeout_s * 2,
            )
    except (TimeoutError, RedisError, OSError):
        stale = micro_cache.get_stale(cache_key, STALE_IF_ERROR_S)
        if stale is not None:
            return _json(stale)
        return error_response(503, "offers are briefly unavailable, retry shortly", code="unavailable",
                              headers={"Retry-After": "1"})

    base_url = settings.public_url or f"{request.url.scheme}://{request.url.netloc}"
    listed = rank(answer, location, query.limit, modes, campaign, state.zones.get(reader), settings,
                  base_url, gtin)
    body = _encode(OffersAnswer(gtin=gtin, location=location, offers=listed))
    micro_cache.put(cache_key, reader.version, body)
    return _json(body)


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
        country = query.country.upper() if query.country else None
        if country is None:
            # Only to decide who delivers there; the answer does not claim a finer place than asked.
            by_ip = _by_ip(request, state)
            country = by_ip.country if by_ip else None
        return Location(lat=query.lat, lon=query.lon, source="query", country=country)
    if query.postal_code:
        place = lookup_postal_code(query.postal_code, (query.country or "FR").upper())
        if place is not None:
            return _location(place, "postal_code")
        return Location(source="none")
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
    zones: DeliveryZones, settings: Any, base_url: str, gtin: str,
) -> list[Offer]:
    """Delivery offers first (at most half the list, cheapest first), then store offers nearest first.

    A campaign's `retailers.priority` pins its retailers ahead of the others within each group.
    """
    include = set(campaign.retailers.include) if campaign else set()
    exclude = set(campaign.retailers.exclude) if campaign else set()
    priority = {rid: i for i, rid in enumerate(campaign.retailers.priority)} if campaign else {}
    campaign_id = campaign.id if campaign else ""
    issued_at = int(time.time())
    pinned = len(priority)

    def allowed(retailer: RetailerEntry) -> bool:
        rid = retailer.retailer_id
        return (not include or rid in include) and rid not in exclude

    def link(retailer: RetailerEntry, store_id: str) -> str:
        token = sign_click(settings, ClickTarget(retailer.retailer_id, store_id, gtin, campaign_id, issued_at))
        return click_url(base_url, token)

    delivery: list[tuple[tuple[int, int], Offer]] = []
    if modes & MODE_BITS["delivery"]:
        for online in answer.delivery:
            retailer = online.retailer
            if not allowed(retailer) or not _delivers(retailer, location, zones):
                continue
            delivery.append((
                (priority.get(retailer.retailer_id, pinned), online.price_cents),
                Offer(retailer=_retailer_ref(retailer), mode="delivery", store=None,
                      price=_price(online.price_cents, online.currency), availability=_availability(online.quantity),
                      url=link(retailer, "")),
            ))
        delivery.sort(key=lambda pair: pair[0])
    listed = [offer for _, offer in delivery[: max(1, limit // 2)]]

    stores: list[tuple[int, Offer]] = []
    for hit in answer.stores:
        retailer = hit.retailer
        if not allowed(retailer):
            continue
        store = hit.store
        ref = StoreRef(id=store.store_id, name=store.name, address=store.address, postal_code=store.postal_code,
                       city=store.city, lat=store.lat, lon=store.lon, distance_km=round(hit.distance_km, 3))
        url = link(retailer, store.store_id)
        for mode in STORE_MODES:
            if hit.mode_bits & modes & MODE_BITS[mode]:
                stores.append((
                    priority.get(retailer.retailer_id, pinned),
                    Offer(retailer=_retailer_ref(retailer), mode=mode, store=ref,  # type: ignore[arg-type]
                          price=_price(hit.price_cents, hit.currency), availability=_availability(hit.quantity),
                          url=url),
                ))
    # sort() is stable: within one priority rank, stores keep Redis' nearest-first order.
    stores.sort(key=lambda pair: pair[0])
    listed += [offer for _, offer in stores[: limit - len(listed)]]
    return listed


def _delivers(retailer: RetailerEntry, location: Location, zones: DeliveryZones) -> bool:
    if retailer.delivery_zones:
        return location.lat is not None and location.lon is not None and zones.covers(
            retailer.retailer_id, location.lat, location.lon
        )
    # Nothing tells the shopper's country: show online offers rather than hide them all.
    return location.country is None or location.country in retailer.delivery_countries


def _retailer_ref(retailer: RetailerEntry) -> RetailerRef:
    return RetailerRef(id=retailer.retailer_id, name=retailer.name, logo_url=retailer.logo_url)


def _price(cents: int, currency: str) -> Price:
    return Price(amount=f"{cents // 100}.{cents % 100:02d}", currency=currency)


def _availability(quantity: int) -> Availability:
    return "low_stock" if quantity <= LOW_STOCK_MAX else "in_stock"


routes: list[BaseRoute] = [Route("/v1/offers", offers, methods=["GET"], name="offers")]
