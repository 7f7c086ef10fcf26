"""Where a shopper (or a postal code) is: the one location type `geo/` hands out."""

from __future__ import annotations

import msgspec


class Place(msgspec.Struct, frozen=True, kw_only=True):
    lat: float
    lon: float
    postal_code: str | None = None
    city: str | None = None
    country: str | None = None  # ISO 3166 alpha-2, upper case
