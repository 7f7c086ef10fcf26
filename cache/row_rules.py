"""Per-row validation of feeds: one row of strings in, one record ready for COPY out, or a RowError.

The validators are the hot loop of `nearcart ingest`; they stay plain Python on strings
(no per-row Decimal, regexes compiled once, repeated values memoised) so one core
validates several hundred thousand rows a second.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Container, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import msgspec

from cache.feed_errors import RowError, quote
from cache.gtin import GtinError, normalize_gtin, normalized_gtins
from cache.keys import MODE_BITS
from cache.reference_data import countries, currencies

_RETAILER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_PRICE = re.compile(r"(\d{1,10})(?:\.(\d{1,2}))?")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
CART_PLACEHOLDERS = ("gtin", "store_id", "qty")
_MAX_TEXT = 300
_MAX_QUANTITY = 2**31 - 1
# Google caps item ids at 50 characters; a little room for other tools.
MAX_ITEM_ID = 64


def _text(field: str, value: str, required: bool = True, limit: int = _MAX_TEXT) -> str:
    value = value.strip()
    if required and not value:
        raise RowError(field, "missing")
    if len(value) > limit:
        raise RowError(field, f"longer than {limit} characters")
    if not value.isprintable():
        raise RowError(field, f"{quote(value)} holds control characters")
    return value


def _retailer_id(value: str) -> str:
    value = value.strip()
    if not value:
        raise RowError("retailer_id", "missing")
    if not _RETAILER_ID.fullmatch(value):
        raise RowError("retailer_id", f"{quote(value)} is not an id (letters, digits, . _ : -, at most 64)")
    return value


def _https_url(field: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise RowError(field, f"{quote(value)} is not an https URL")
    return value


def cart_template_error(template: str) -> str | None:
    """Why `template` cannot be a basket URL template, or None."""
    names = _PLACEHOLDER.findall(template)
    unknown = [n for n in names if n not in CART_PLACEHOLDERS]
    if unknown:
        return f"unknown placeholder {{{unknown[0]}}}; allowed: {{gtin}}, {{store_id}}, {{qty}}"
    if "gtin" not in names:
        return "needs the {gtin} placeholder"
    filled = _PLACEHOLDER.sub("x", template)
    if "{" in filled or "}" in filled:
        return "has an unbalanced { or }"
    parts = urlsplit(template)
    if parts.scheme != "https" or not urlsplit(filled).hostname:
        return f"{quote(template)} is not an https URL"
    if "{" in parts.netloc:
        # Click redirects may only lead to the retailer's own host.
        return "placeholders are not allowed in the host name"
    return None


def _zones(value: Any) -> str | None:
    if value in ("", None):
        return None
    if isinstance(value, str):
        try:
            value = msgspec.json.decode(value)
        except msgspec.DecodeError as exc:
            raise RowError("delivery_zones", f"not valid JSON: {exc}") from None
    from geo.zones import geojson_error  # here: shapely loads only for feeds that carry zones

    problem = geojson_error(value)
    if problem:
        raise RowError("delivery_zones", problem)
    return msgspec.json.encode(value).decode()


def _country_list(value: str) -> list[str]:
    known = countries()
    found: list[str] = []
    for part in value.split("|"):
        code = part.strip().upper()
        if not code:
            continue
        if code not in known:
            raise RowError("delivery_countries", f"{quote(part)} is not an ISO 3166 country code")
        if code not in found:
            found.append(code)
    return found


def validate_retailer(line: int, values: tuple[Any, ...]) -> tuple[Any, ...]:
    """(line, retailer_id, name, logo_url, cart_url_template, delivery_countries, delivery_zones JSON or None)."""
    retailer_id, name, logo_url, template, delivery_countries, zones = values
    retailer_id = _retailer_id(retailer_id)
    name = _text("name", name)
    logo_url = _text("logo_url", logo_url, required=False, limit=2000)
    if logo_url:
        _https_url("logo_url", logo_url)
    template = _text("cart_url_template", template, limit=2000)
    problem = cart_template_error(template)
    if problem:
        raise RowError("cart_url_template", problem)
    return line, retailer_id, name, logo_url, template, _country_list(delivery_countries), _zones(zones)


def store_validator(retailers: Container[str]) -> Callable[[int, tuple[Any, ...]], tuple[Any, ...]]:
    """Validates store rows against the retailers already in the catalog."""
    known_countries = countries()

    def validate(line: int, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """(line, retailer_id, store_id, name, address, postal_code, city, country, lat, lon, approximate)."""
        retailer_id, store_id, name, address, postal_code, city, country, lat, lon = values
        retailer_id = retailer_id.strip()
        if retailer_id not in retailers:
            raise RowError("retailer_id", f"unknown retailer {quote(retailer_id)}" if retailer_id else "missing")
        store_id = _text("store_id", store_id, limit=64)
        country_code = country.strip().upper()
        if country_code not in known_countries:
            raise RowError("country", f"{quote(country)} is not an ISO 3166 country code")
        postal_code = _text("postal_code", postal_code, required=False, limit=20)
        approximate = not lat.strip() and not lon.strip()
        if approximate:
            lat_deg, lon_deg = _postal_centre(postal_code, country_code)
        else:
            lat_deg, lon_deg = _coordinate("lat", lat, 90.0), _coordinate("lon", lon, 180.0)
        return (
            line, retailer_id, store_id, _text("name", name), _text("address", address, required=False),
            postal_code, _text("city", city, required=False), country_code, lat_deg, lon_deg, approximate,
        )

    return validate


def _postal_centre(postal_code: str, country: str) -> tuple[float, float]:
    """Where a store without coordinates goes: its postal code's centre, or the row is rejected."""
    from geo.postal import lookup_postal_code

    place = lookup_postal_code(postal_code, country) if postal_code else None
    if place is None:
        reason = f"postal code {quote(postal_code)} of {country} cannot be placed" if postal_code else "no postal code"
        raise RowError("lat", f"missing, and {reason}: give lat and lon")
    return place.lat, place.lon


def item_validator(retailers: Container[str]) -> Callable[[int, tuple[Any, ...]], tuple[Any, ...]]:
    """Validates products rows (retailer_id, item_id, gtin: a retailer's product feed) against the catalog."""

    def validate(line: int, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """(line, retailer_id, item_id, gtin14)."""
        retailer_id, item_id, gtin = values
        retailer_id = retailer_id.strip()
        if retailer_id not in retailers:
            raise RowError("retailer_id", f"unknown retailer {quote(retailer_id)}" if retailer_id else "missing")
        item_id = item_id.strip()
        if not item_id:
            raise RowError("id", "missing")
        if len(item_id) > MAX_ITEM_ID or not item_id.isprintable():
            raise RowError("id", f"{quote(item_id)} is not an item id (printable, at most {MAX_ITEM_ID} characters)")
        try:
            gtin14 = normalize_gtin(gtin)
        except GtinError as exc:
            raise RowError("gtin", str(exc) if gtin.strip() else "missing") from None
        return line, retailer_id, item_id, gtin14

    return validate


def _coordinate(field: str, value: str, bound: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise RowError(field, f"{quote(value)} is not a number" if value.strip() else "missing") from None
    if not math.isfinite(number) or not -bound <= number <= bound:
        raise RowError(field, f"{quote(value)} is outside -{bound:g}..{bound:g}")
    return number


def offer_validator(
    retailers: Container[str], stores: Mapping[str, Container[str]]
) -> Callable[[int, tuple[Any, ...]], tuple[Any, ...]]:
    """Validates offer rows against the retailers and stores (retailer_id -> store ids) in the catalog.

    Prices, modes, currencies and timestamps repeat across rows, so each distinct
    string is parsed once and remembered (bounded, so a feed of unique values cannot
    grow memory without limit).
    """
    prices: dict[str, int] = {}
    modes_seen: dict[str, int] = {}
    stamps: dict[str, int] = {}
    # Stock counts are small numbers: a dict lookup costs a third of the checks and int() it saves.
    quantities = {str(n): n for n in range(1000)}
    normalized = normalized_gtins()
    known_currencies = currencies()
    price_match = _PRICE.fullmatch
    no_stores: frozenset[str] = frozenset()
    store_modes = MODE_BITS["in_store"] | MODE_BITS["click_collect"]

    def validate(line: int, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """(line, retailer_id, store_id, gtin14, price_cents, currency, quantity, mode_bits, updated_at_us).

        `updated_at_us` is microseconds since the Unix epoch: COPY encodes an int several times
        faster than an aware datetime, and the ingest sends millions of them.
        """
        retailer_id, store_id, gtin, price, currency, quantity, modes, updated_at = values
        if retailer_id not in retailers:
            retailer_id = retailer_id.strip()
            if retailer_id not in retailers:
                raise RowError("retailer_id", f"unknown retailer {quote(retailer_id)}" if retailer_id else "missing")
        if store_id:
            store_id = store_id.strip()
            if store_id and store_id not in stores.get(retailer_id, no_stores):
                raise RowError("store_id", f"unknown store {quote(store_id)} of retailer {quote(retailer_id)}")
        gtin14 = normalized.get(gtin)
        if gtin14 is None:
            try:
                gtin14 = normalize_gtin(gtin)
            except GtinError as exc:
                raise RowError("gtin", str(exc) if gtin.strip() else "missing") from None
        cents = prices.get(price)
        if cents is None:
            cents = _price_cents(price, price_match)
            if len(prices) > 100_000:
                prices.clear()
            prices[price] = cents
        if currency not in known_currencies:
            currency = currency.strip().upper()
            if currency not in known_currencies:
                raise RowError("currency", f"{quote(currency)} is not an ISO 4217 currency code")
        count = quantities.get(quantity)
        if count is None:
            if quantity.isdigit() and quantity.isascii() and len(quantity) < 10:
                count = int(quantity)
            else:
                count = _quantity(quantity)
        bits = modes_seen.get(modes)
        if bits is None:
            bits = _mode_bits(modes)
            modes_seen[modes] = bits
        if store_id:
            if not bits & store_modes:
                raise RowError("modes", "a store offer needs in_store or click_collect")
        elif bits & store_modes:
            raise RowError("modes", "an online offer (empty store_id) can only be delivery")
        stamp = stamps.get(updated_at)
        if stamp is None:
            stamp = epoch_us(_timestamp(updated_at))
            if len(stamps) > 100_000:
                stamps.clear()
            stamps[updated_at] = stamp
        return line, retailer_id, store_id, gtin14, cents, currency, count, bits, stamp

    return validate


def _price_cents(price: str, match: Callable[[str], re.Match[str] | None]) -> int:
    found = match(price.strip())
    if found is None:
        raise RowError("price", f"{quote(price)} is not a decimal like 2.99" if price.strip() else "missing")
    whole, fraction = found.groups()
    return int(whole) * 100 + (int(fraction.ljust(2, "0")) if fraction else 0)


def _quantity(quantity: str) -> int:
    text = quantity.strip()
    if not text:
        raise RowError("quantity", "missing")
    if not (text.isascii() and text.isdigit()):
        raise RowError("quantity", f"{quote(quantity)} is not a whole number ≥ 0")
    count = int(text)
    if count > _MAX_QUANTITY:
        raise RowError("quantity", f"{quote(quantity)} is too large")
    return count


def _mode_bits(modes: str) -> int:
    bits = 0
    for part in modes.split("|"):
        name = part.strip().lower()
        if not name:
            continue
        bit = MODE_BITS.get(name)
        if bit is None:
            raise RowError("modes", f"{quote(part)} is not a mode; use in_store, click_collect or delivery")
        bits |= bit
    if not bits:
        raise RowError("modes", "missing; use in_store, click_collect or delivery, separated by |")
    return bits


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_us(stamp: datetime) -> int:
    """An aware datetime as whole microseconds since 1970-01-01 UTC (exact: no float on the way)."""
    return (stamp - _EPOCH) // _MICROSECOND


def _timestamp(value: str) -> datetime:
    text = value.strip()
    if not text:
        raise RowError("updated_at", "missing")
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise RowError("updated_at", f"{quote(value)} is not an ISO 8601 date-time") from None
    if stamp.tzinfo is None:
        raise RowError("updated_at", f"{quote(value)} lacks a UTC offset (e.g. +02:00 or Z)")
    return stamp
