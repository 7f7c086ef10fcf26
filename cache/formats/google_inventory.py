"""Google local product inventory (TSV or RSS 2.0 XML) -> nearcart offer rows of one retailer.

How Google's fields become nearcart's (docs/feeds/README.md says the same to retailers):

- `store_code` is the store id (as in the retailer's Business Profile sheet); `gtin` if given,
  else `id` through the retailer's product feed (table retailer_items); an `id` neither mapped
  nor itself a valid GTIN is refused, never guessed.
- `price` is `3.75 EUR`; `sale_price` replaces it while its `sale_price_effective_date`
  (`start/end`, ISO 8601) holds at the feed's time, or always when it has no dates.
- nearcart derives availability from a quantity (at most 3 shows as low stock). `quantity`
  is used when given; `out of stock` and `on display to order` are 0 (the shopper could not
  take the item home that day: nothing to send them for); `limited availability` is at most
  LIMITED_QUANTITY; `in stock` without a quantity is IN_STOCK_QUANTITY.
- Every row is an in-store offer; `click_collect` too when `pickup_method` is buy, reserve or
  ship to store and `pickup_sla` is not multi-week.
- `updated_at` is the feed's time: the file's modification time (or FeedOptions.as_of), the
  same for every row, so the same file loaded twice changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import ClassVar, TypeVar

from cache.feed_errors import RowError, quote
from cache.formats.base import Canonical, Problem, Source
from cache.formats.delimited import mapped
from cache.formats.retailer import GoogleSheet, RetailerFormat
from cache.formats.rss import RssItems
from cache.gtin import GtinError, normalize_gtin

# Google's names (spaces or underscores) -> the names the rows below use.
FIELDS = {
    "store code": "store_code", "id": "id", "gtin": "gtin", "availability": "availability", "price": "price",
    "sale price": "sale_price", "sale price effective date": "sale_price_effective_date", "quantity": "quantity",
    "pickup method": "pickup_method", "pickup sla": "pickup_sla",
}
IN_STOCK_QUANTITY = 10
LIMITED_QUANTITY = 1
LOW_STOCK_MAX = 3  # edge_api.offer_json.LOW_STOCK_MAX: limited availability never shows as in stock
_AVAILABILITY = {"in stock": None, "limited availability": LIMITED_QUANTITY, "out of stock": 0,
                 "on display to order": 0}
_PICKUP_METHODS = ("buy", "reserve", "ship to store", "not supported")
_PICKUP_SLAS = ("same day", "next day", *(f"{n} day" for n in range(2, 8)), "multi week")
_MONEY = re.compile(r"(\d+(?:[.,]\d+)?)\s*([A-Za-z]{3})|([A-Za-z]{3})\s*(\d+(?:[.,]\d+)?)")
T = TypeVar("T")
_WHAT = "a Google local product inventory has store_code, id (or gtin), availability, price, quantity"


class GoogleInventoryTsv(GoogleSheet):
    name = "google-inventory"
    holds = "offers"
    fields: ClassVar[dict[str, str]] = FIELDS
    needed = (("store_code",), ("id", "gtin"), ("availability", "quantity"))
    what = _WHAT

    def converter(self, source: Source) -> Callable[[dict[str, str]], dict[str, str] | Problem]:
        return offer_maker(source)


class GoogleInventoryXml(RetailerFormat):
    name = "google-inventory-xml"
    holds = "offers"
    needs_retailer = True

    def parse(self, source: Source) -> Iterator[Canonical]:
        make = offer_maker(source)
        items = RssItems(source.stream, source.name, source.options.max_line)
        return mapped(items, lambda item: make({name: item.get(key, "") for key, name in FIELDS.items()}))


def offer_maker(source: Source) -> Callable[[dict[str, str]], dict[str, str] | Problem]:
    """Turns one inventory row (every one of FIELDS' names) into a canonical offer row, or says which field
    is wrong."""
    items = source.options.items
    retailer = source.options.retailer or ""
    as_of = source.as_of
    updated_at = as_of.isoformat()
    # Prices, availabilities, pickup terms and sale dates repeat across rows: each distinct text is
    # worked out once per file (the TSV reader is the ingest's busiest loop, as for nearcart's CSV).
    money, quantity, modes = _memo(_money), _memo(_quantity), _memo(_modes)
    sale_active = _memo(lambda dates: _sale_active(dates, as_of))

    def make(row: dict[str, str]) -> dict[str, str] | Problem:
        try:
            store = row["store_code"].strip()
            if not store:
                raise RowError("store_code", "missing")
            amount, currency = money("price", row["price"])
            sale_text = row["sale_price"].strip()
            if sale_text:
                sale, sale_currency = money("sale_price", sale_text)
                if sale_currency != currency:
                    raise RowError("sale_price", f"{quote(sale_text)} is not in the price's currency {currency}")
                if sale_active(row["sale_price_effective_date"].strip()):
                    amount = sale
            gtin = row["gtin"].strip() or items.get(row["id"].strip()) or _gtin_of_id(row["id"].strip())
            return {"retailer_id": retailer, "store_id": store, "gtin": gtin, "price": amount, "currency": currency,
                    "quantity": quantity(row["availability"], row["quantity"]),
                    "modes": modes(row["pickup_method"], row["pickup_sla"]), "updated_at": updated_at}
        except RowError as exc:
            return exc.field, exc.reason

    return make


def _memo(work: Callable[..., T]) -> Callable[..., T]:
    """`work` remembering its answers by arguments (up to 10,000; a RowError is not remembered)."""
    seen: dict[tuple[str, ...], T] = {}

    def call(*args: str) -> T:
        found = seen.get(args)
        if found is None:
            found = work(*args)
            if len(seen) >= 10_000:
                seen.clear()
            seen[args] = found
        return found

    return call


def _gtin_of_id(item: str) -> str:
    """An `id` the product feed does not map: itself if it is a GTIN, else the row is refused."""
    if not item:
        raise RowError("id", "missing (or give gtin)")
    try:
        return normalize_gtin(item)
    except GtinError:
        raise RowError("id", f"item id {quote(item)} has no gtin in the product feed") from None


def _money(field: str, text: str) -> tuple[str, str]:
    """`3.75 EUR` (or `EUR 3.75`, `3,75 EUR`) -> ("3.75", "EUR")."""
    found = _MONEY.fullmatch(text.strip())
    if found is None:
        reason = f"{quote(text)} is not an amount and currency like 3.75 EUR" if text.strip() else "missing"
        raise RowError(field, reason)
    amount, currency = (found[1], found[2]) if found[1] else (found[4], found[3])
    return amount.replace(",", "."), currency.upper()


def _sale_active(dates: str, as_of: datetime) -> bool:
    """Whether a sale with effective dates `start/end` runs at `as_of`; no dates: it always does."""
    if not dates:
        return True
    start_text, slash, end_text = dates.partition("/")
    try:
        if not slash:
            raise ValueError(dates)
        start, end = _instant(start_text), _instant(end_text)
    except ValueError:
        raise RowError("sale_price_effective_date", f"{quote(dates)} is not an ISO 8601 interval start/end, like"
                       " 2024-05-01T00:00+02:00/2024-05-08T00:00+02:00") from None
    return start <= as_of < end


def _instant(text: str) -> datetime:
    stamp = datetime.fromisoformat(text.strip())
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)  # no offset: taken as UTC


def _quantity(availability: str, quantity: str) -> str:
    """The quantity nearcart stores, from Google's availability and optional quantity."""
    said = " ".join(availability.replace("_", " ").lower().split())
    count = quantity.strip()
    if said not in _AVAILABILITY:
        if not said and count:
            return count  # quantity alone says it all
        spellings = ", ".join(_AVAILABILITY)
        raise RowError("availability", f"{quote(availability)} is not one of {spellings}" if said else "missing")
    fixed = _AVAILABILITY[said]
    if fixed == 0:
        return "0"
    if not count:
        return str(IN_STOCK_QUANTITY if fixed is None else fixed)
    if fixed is not None and count.isdigit() and int(count) > LOW_STOCK_MAX:
        return str(LOW_STOCK_MAX)  # the retailer says stock is limited: shoppers see "low stock"
    return count  # the offer validator checks it is a whole number


def _modes(method: str, sla: str) -> str:
    said = " ".join(method.replace("_", " ").lower().split())
    if said and said not in _PICKUP_METHODS:
        raise RowError("pickup_method", f"{quote(method)} is not one of {', '.join(_PICKUP_METHODS)}")
    speed = " ".join(sla.replace("_", " ").replace("-", " ").lower().split())
    if speed and speed not in _PICKUP_SLAS:
        raise RowError("pickup_sla", f"{quote(sla)} is not one of same day, next day, 2-day … 7-day, multi-week")
    if said in ("buy", "reserve", "ship to store") and speed != "multi week":
        return "in_store|click_collect"
    return "in_store"
