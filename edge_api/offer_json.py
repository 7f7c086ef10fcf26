"""Offers answers assembled from JSON pieces encoded once, not re-encoded per request.

A store, a retailer and a price look the same in every answer that shows them; only
the distance and the signed link differ from one shopper to the next. Each piece is
encoded by msgspec from the answer's own schema structs (`RetailerRef`, `StoreRef`,
`Price`) the first time it is needed and kept until the directory changes, so an
answer costs a join of bytes instead of a tree of structs. A store offer is kept whole
per index member (`StoreOffer`): the member's text names its store, price, quantity
and modes (with the unconfirmed flag, cache/keys.py `UNCONFIRMED_BIT`), so all of the
offer but its distance and link follows from those bytes.
The bytes are exactly what `msgspec.json.encode(OffersAnswer(...))` gives (a test
holds this).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable

import msgspec

from cache.directory import RetailerEntry, StoreEntry
from cache.index_reader import Member
from cache.keys import MODE_BITS, UNCONFIRMED_BIT
from edge_api.schemas import Location, Price, RetailerRef, StoreRef
from edge_api.tokens import click_url

# At or below this many units an offer shows as "low_stock".
LOW_STOCK_MAX = 3

_encode = msgspec.json.Encoder().encode
_DISTANCE_PLACEHOLDER = b"0.0}"
# Store offers kept per worker, by index member; bounded (one a store, price and quantity seen).
STORE_OFFERS_KEPT = 100_000


class StoreOffer:
    """One index member ready to list: whose, which modes, and its JSON but for the distance and link.

    An offer is `<in_store or click_collect head><distance>` + `tail` + `<url>}`.
    """

    __slots__ = ("retailer", "retailer_id", "link_key", "mode_bits", "in_store", "click_collect", "tail")

    def __init__(self, member: Member, in_store: bytes, click_collect: bytes) -> None:
        self.retailer = member.retailer
        self.retailer_id = member.retailer.retailer_id
        # Its signed link's key: both modes of one store share the link, which carries the price shown.
        self.link_key = (self.retailer_id, member.store.store_id, member.price_cents, member.currency)
        self.mode_bits = member.mode_bits
        self.in_store = in_store
        self.click_collect = click_collect
        self.tail = b"}" + price_and_availability(member.price_cents, member.currency,
                                                  member.quantity <= LOW_STOCK_MAX,
                                                  member.mode_bits & UNCONFIRMED_BIT)


@functools.lru_cache(maxsize=8192)
def price_and_availability(cents: int, currency: str, low_stock: bool, unconfirmed: int) -> bytes:
    """`,"price":{...},"availability":"...","url":` — what follows the store in an offer.

    `unconfirmed` (the member's `UNCONFIRMED_BIT`, or 0) adds `"unconfirmed":true` before the url,
    where `Offer` has it.
    """
    price = Price(amount=f"{cents // 100}.{cents % 100:02d}", currency=currency)
    return (b',"price":' + _encode(price) + b',"availability":"' + (b"low_stock" if low_stock else b"in_stock")
            + (b'","unconfirmed":true,"url":' if unconfirmed else b'","url":'))


class OfferPieces:
    """Encoded retailers and stores of one directory version (`reset` when it changes).

    `resolve` turns an index member into the `Member` it stands for under the current directory
    (`IndexReader.resolve`).
    """

    def __init__(self, resolve: Callable[[bytes], Member | None]) -> None:
        self.version = -1
        self._resolve = resolve
        self._retailers: dict[int, bytes] = {}
        self._stores: dict[int, bytes] = {}
        # An offer up to its distance, by (store number, mode).
        self._heads: dict[tuple[int, str], bytes] = {}
        # Oldest first out, one at a time: clearing 100k entries at once would stall the worker.
        self.store_offers: OrderedDict[bytes, StoreOffer] = OrderedDict()

    def reset(self, version: int) -> None:
        """Follow the directory: drop what was encoded under another version of it."""
        if version != self.version:
            self._retailers.clear()
            self._stores.clear()
            self._heads.clear()
            self.store_offers.clear()
            self.version = version

    def store_offer(self, member: bytes) -> StoreOffer | None:
        """The offer an index member stands for (callers look in `store_offers` first); None if unknown yet."""
        resolved = self._resolve(member)
        if resolved is None:
            return None  # the directory reload is still on its way
        if len(self.store_offers) >= STORE_OFFERS_KEPT:
            self.store_offers.popitem(last=False)
        found = self.store_offers[member] = StoreOffer(resolved, self._head(resolved, "in_store"),
                                                       self._head(resolved, "click_collect"))
        return found

    def _head(self, member: Member, mode: str) -> bytes:
        """An offer of `member` in `mode` up to its distance."""
        head = self._heads.get((member.store.num, mode))
        if head is None:
            head = self._heads[(member.store.num, mode)] = (self.retailer(member.retailer) + _MODES[mode]
                                                            + b'","store":' + self.store(member.store))
        return head

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
                                       lon=store.lon, approximate=store.approximate, distance_km=0.0))
            assert encoded.endswith(_DISTANCE_PLACEHOLDER)
            found = self._stores[store.num] = encoded[: -len(_DISTANCE_PLACEHOLDER)]
        return found

    def delivery_offer(self, out: list[bytes], retailer: RetailerEntry, cents: int, currency: str, quantity: int,
                       mode_bits: int, url: bytes) -> None:
        """Append one delivery offer's pieces to `out` (`mode_bits` as the index has them, for the flag)."""
        if out:
            out.append(b",")
        out += (self.retailer(retailer), b'delivery","store":null',
                price_and_availability(cents, currency, quantity <= LOW_STOCK_MAX, mode_bits & UNCONFIRMED_BIT),
                url, b"}")


_IN_STORE, _CLICK_COLLECT = MODE_BITS["in_store"], MODE_BITS["click_collect"]
_MODES = {"in_store": b"in_store", "click_collect": b"click_collect", "delivery": b"delivery"}


def append_store_offers(out: list[bytes], offer: StoreOffer, mode_bits: int, distance_km: bytes, url: bytes,
                        room: int) -> int:
    """Append the store's offers in `mode_bits` (in store first), at most `room`; how many were appended.

    `distance_km` is the distance as Redis gives it (text, in km); the answer shows it to the metre.
    """
    shown = _encode(round(float(distance_km), 3))
    added = 0
    if mode_bits & _IN_STORE and room > 0:
        if out:
            out.append(b",")
        out += (offer.in_store, shown, offer.tail, url, b"}")
        added = 1
    if mode_bits & _CLICK_COLLECT and room > added:
        if out:
            out.append(b",")
        out += (offer.click_collect, shown, offer.tail, url, b"}")
        added += 1
    return added


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
