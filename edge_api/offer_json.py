"""Offers answers assembled from JSON pieces encoded once, not re-encoded per request.

A store, a retailer and a price look the same in every answer that shows them; only
the distance and the signed link differ from one shopper to the next. Each piece is
encoded by msgspec from the answer's own schema structs (`RetailerRef`, `StoreRef`,
`Price`) the first time it is needed and kept until the directory changes, so an
answer costs a join of bytes instead of a tree of structs. The bytes are exactly what
`msgspec.json.encode(OffersAnswer(...))` gives (a test holds this).
"""

from __future__ import annotations

import functools

import msgspec

from cache.directory import RetailerEntry, StoreEntry
from edge_api.schemas import Location, Price, RetailerRef, StoreRef
from edge_api.tokens import click_url

# At or below this many units an offer shows as "low_stock".
LOW_STOCK_MAX = 3

_encode = msgspec.json.Encoder().encode
_DISTANCE_PLACEHOLDER = b"0.0}"


@functools.lru_cache(maxsize=8192)
def price_and_availability(cents: int, currency: str, low_stock: bool) -> bytes:
    """`,"price":{...},"availability":"...","url":` — what follows the store in an offer."""
    price = Price(amount=f"{cents // 100}.{cents % 100:02d}", currency=currency)
    return (b',"price":' + _encode(price) + b',"availability":"' + (b"low_stock" if low_stock else b"in_stock")
            + b'","url":')


class OfferPieces:
    """Encoded retailers and stores of one directory version (`reset` when it changes)."""

    def __init__(self) -> None:
        self.version = -1
        self._retailers: dict[int, bytes] = {}
        self._stores: dict[int, bytes] = {}
        # An offer up to its distance, by (store number, mode).
        self._heads: dict[tuple[int, str], bytes] = {}

    def reset(self, version: int) -> None:
        if version != self.version:
            self._retailers.clear()
            self._stores.clear()
            self._heads.clear()
            self.version = version

    def retailer(self, retailer: RetailerEntry) -> bytes:
        """`{"retailer":{...},"mode":"` — how every offer starts."""
        found = self._retailers.get(retailer.num)
        if found is None:
            ref = RetailerRef(id=retailer.retailer_id, name=retailer.name, logo_url=retailer.logo_url)
            found = self._retailers[retailer.num] = b'{"retailer":' + _encode(ref) + b',"mode":"'
        return found

    def store(self, store: StoreEntry) -> bytes:
        """The store object up to its distance: `{"id":...,"lon":2.35,"distance_km":`."""
        found = self._stores.get(store.num)
        if found is None:
            encoded = _encode(StoreRef(id=store.store_id, name=store.name, address=store.address,
                                       postal_code=store.postal_code, city=store.city, lat=store.lat,
                                       lon=store.lon, distance_km=0.0))
            assert encoded.endswith(_DISTANCE_PLACEHOLDER)
            found = self._stores[store.num] = encoded[: -len(_DISTANCE_PLACEHOLDER)]
        return found

    def store_offer(self, out: list[bytes], retailer: RetailerEntry, mode: str, store: StoreEntry,
                    distance_km: float, cents: int, currency: str, quantity: int, url: bytes) -> None:
        """Append one store offer's pieces to `out`, the answer's offers that `answer_json` joins once."""
        head = self._heads.get((store.num, mode))
        if head is None:
            head = self._heads[(store.num, mode)] = (self.retailer(retailer) + _MODES[mode] + b'","store":'
                                                     + self.store(store))
        if out:
            out.append(b",")
        out += (head, _encode(round(distance_km, 3)), b"}",
                price_and_availability(cents, currency, quantity <= LOW_STOCK_MAX), url, b"}")

    def delivery_offer(self, out: list[bytes], retailer: RetailerEntry, cents: int, currency: str, quantity: int,
                       url: bytes) -> None:
        """Append one delivery offer's pieces to `out`."""
        if out:
            out.append(b",")
        out += (self.retailer(retailer), b'delivery","store":null',
                price_and_availability(cents, currency, quantity <= LOW_STOCK_MAX), url, b"}")


_MODES = {"in_store": b"in_store", "click_collect": b"click_collect", "delivery": b"delivery"}


def answer_json(gtin: str, location: Location, offers: list[bytes]) -> bytes:
    """The whole `OffersAnswer` body around the offers' pieces (one join: no bytes per offer)."""
    return b"".join((b'{"gtin":', _encode(gtin), b',"location":', _encode(location), b',"offers":[',
                     *offers, b"]}"))


def link_json(base_url: str, token: str) -> bytes:
    """A click link as a JSON string (the Host a request names may need escaping, a token never does)."""
    return _link_head(base_url) + token.encode("ascii") + b'"'


@functools.lru_cache(maxsize=64)
def _link_head(base_url: str) -> bytes:
    """`"<base>/v1/go/` as JSON: the part of every link an edge serves that stays the same."""
    return _encode(click_url(base_url, ""))[:-1]
