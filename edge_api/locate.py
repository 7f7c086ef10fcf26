"""Locate step of `/v1/offers`: where the shopper is, and which retailers' delivery zones hold them.

lat/lon given > postal code > client IP through GeoIP > nothing. The client IP is only
used here, in memory, and never stored.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from starlette.types import Scope

from cache.index_reader import IndexReader
from edge_api.client_ip import client_ip_of
from edge_api.schemas import Location, OffersQuery
from geo.geoip import GeoIP
from geo.place import Place
from geo.postal import country_at, lookup_postal_code
from geo.zones import DeliveryZones

_NOWHERE: frozenset[str] = frozenset()
# Points whose zones answer is kept (oldest out first).
ZONE_POINTS_KEPT = 50_000


class Located(NamedTuple):
    location: Location
    # True when the client's IP decided any of it: such an answer is this client's alone.
    by_ip: bool


def locate(query: OffersQuery, scope: Scope, geoip: GeoIP | None, trusted_proxies: tuple[str, ...]) -> Located:
    """Where the shopper is, from what they sent or else from their IP address."""
    if query.lat is not None and query.lon is not None:
        # The country only decides who delivers there; the answer claims no finer place than asked.
        country = query.country.upper() if query.country else country_at(query.lat, query.lon)
        if country is not None:
            return Located(Location(lat=query.lat, lon=query.lon, source="query", country=country), False)
        by_ip = _by_ip(scope, geoip, trusted_proxies)
        country = by_ip.country if by_ip else None
        return Located(Location(lat=query.lat, lon=query.lon, source="query", country=country), True)
    if query.postal_code:
        place = lookup_postal_code(query.postal_code, (query.country or "FR").upper())
        if place is not None:
            return Located(_location(place, "postal_code"), False)
        return Located(Location(source="none"), False)
    place = _by_ip(scope, geoip, trusted_proxies)
    if place is not None:
        return Located(_location(place, "ip"), True)
    return Located(Location(source="none"), True)


def _by_ip(scope: Scope, geoip: GeoIP | None, trusted_proxies: tuple[str, ...]) -> Place | None:
    return geoip.lookup(client_ip_of(scope, trusted_proxies)) if geoip is not None else None


def _location(place: Place, source: str) -> Location:
    return Location(lat=place.lat, lon=place.lon, source=source,  # type: ignore[arg-type]
                    postal_code=place.postal_code, city=place.city, country=place.country)


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
            if len(self._inside) >= ZONE_POINTS_KEPT:
                self._inside.popitem(last=False)
            found = zones.delivers_to(lat, lon)
            # Few distinct answers exist (a handful of zones): keep one object per answer, not per point.
            found = self._inside[(lat, lon)] = self._answers.setdefault(found, found)
        return found
