"""Records passed between feed ingestion and the Redis index writer."""

from __future__ import annotations

from typing import NamedTuple


class OfferState(NamedTuple):
    price_cents: int
    currency: str
    quantity: int
    mode_bits: int


class OfferChange(NamedTuple):
    """One offer whose stored row changed: what the index held before and what it must hold now.

    `store_num`, `lat`, `lon` are None for an online (delivery) offer. `old` is None for a new
    offer. Quantity 0 means "out of stock": the offer leaves the index.
    """

    gtin: str
    retailer_num: int
    store_num: int | None
    lat: float | None
    lon: float | None
    old: OfferState | None
    new: OfferState
