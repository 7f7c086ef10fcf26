"""Shopper location from the client IP, through a GeoLite2/GeoIP2 City database.

The reader memory-maps the file once (lifespan) and answers in about 20 µs, so it is
called inline in request handlers. Data: MaxMind GeoLite2 (CC BY-SA 4.0); by default
the copy that the `maxminddb-geolite2` package ships, `NEARCART_GEOIP_DB` names another.
"""

from __future__ import annotations

import ipaddress

import geoip2.database
import geoip2.errors
import maxminddb
from _maxminddb_geolite2 import geolite2_database

from geo.place import Place

# French names first: most shoppers read the widget in French ("Londres", "Bruxelles").
LOCALES = ["fr", "en"]


def default_database() -> str:
    """Path of the GeoLite2-City.mmdb file inside the maxminddb-geolite2 package."""
    return str(geolite2_database())


class GeoIP:
    def __init__(self, path: str = "") -> None:
        self.path = path or default_database()
        self._reader: geoip2.database.Reader | None = geoip2.database.Reader(self.path, locales=LOCALES)

    def lookup(self, ip: str) -> Place | None:
        """Where an IP is; None for private, reserved, unknown or malformed addresses. Never raises."""
        reader = self._reader
        if reader is None or not isinstance(ip, str):
            return None
        try:
            address = ipaddress.ip_address(ip.strip())
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        # Loopback, RFC 1918, CGNAT, link-local, documentation ranges...: no place to give.
        if not address.is_global:
            return None
        try:
            city = reader.city(address)
        except (geoip2.errors.GeoIP2Error, maxminddb.InvalidDatabaseError, ValueError, TypeError):
            return None
        lat, lon = city.location.latitude, city.location.longitude
        if lat is None or lon is None:
            return None
        return Place(
            lat=lat,
            lon=lon,
            postal_code=city.postal.code,
            city=city.city.name,
            country=city.country.iso_code or city.registered_country.iso_code,
        )

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> GeoIP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
