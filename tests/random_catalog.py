"""A random catalog written straight into PostgreSQL, for tests that compare the index with brute force."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

import asyncpg

from cache.gtin import check_digit
from cache.keys import MODE_BITS
from geo.distance import great_circle_km


class CatalogStore(NamedTuple):
    retailer_id: str
    store_id: str
    lat: float
    lon: float


class CatalogOffer(NamedTuple):
    retailer_id: str
    store_id: str
    gtin: str
    price_cents: int
    quantity: int
    mode_bits: int


class RandomCatalog(NamedTuple):
    stores: list[CatalogStore]
    offers: list[CatalogOffer]
    gtins: list[str]


def gtin14(body: int) -> str:
    """The 14-digit form of the GTIN-13 whose first 12 digits are `body`."""
    digits = f"{body:012d}"
    return "0" + digits + str(check_digit(digits))


async def write_random_catalog(
    conn: asyncpg.Connection, seed: int, stores: int = 1200, gtins: int = 12, retailers: int = 6,
    center: tuple[float, float] = (48.85, 2.35), spread_deg: float = 0.6,
) -> RandomCatalog:
    """Retailers, stores scattered around `center`, and offers (some out of stock, some online)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    retailer_ids = [f"r{i}" for i in range(retailers)]
    await conn.executemany(
        "INSERT INTO retailers (retailer_id, name, cart_url_template, delivery_countries)"
        " VALUES ($1, $2, $3, $4)",
        [(r, f"Retailer {r}", f"https://www.{r}.example/cart?ean={{gtin}}&s={{store_id}}", ["FR"])
         for r in retailer_ids],
    )
    catalog_stores = [
        CatalogStore(
            rng.choice(retailer_ids), f"s{i}",
            center[0] + rng.uniform(-spread_deg, spread_deg), center[1] + rng.uniform(-spread_deg, spread_deg),
        )
        for i in range(stores)
    ]
    await conn.executemany(
        "INSERT INTO stores (retailer_id, store_id, name, address, postal_code, city, country, lat, lon)"
        " VALUES ($1, $2, $3, '1 rue Test', '75001', 'Paris', 'FR', $4, $5)",
        [(s.retailer_id, s.store_id, f"Store {s.store_id}", s.lat, s.lon) for s in catalog_stores],
    )
    gtin_list = [gtin14(300000000000 + rng.randrange(10**9)) for _ in range(gtins)]
    offers: list[CatalogOffer] = []
    for gtin in gtin_list:
        for store in rng.sample(catalog_stores, k=len(catalog_stores) // 2):
            quantity = rng.choice([0, 0, 1, 2, 5, 12, 40])
            bits = rng.choice([MODE_BITS["in_store"], MODE_BITS["click_collect"], 3])
            price = rng.randrange(99, 2999)
            offers.append(CatalogOffer(store.retailer_id, store.store_id, gtin, price, quantity, bits))
        for retailer in rng.sample(retailer_ids, k=2):
            offers.append(CatalogOffer(retailer, "", gtin, rng.randrange(99, 2999), rng.choice([0, 3, 8]), 4))
    await conn.copy_records_to_table(
        "offers",
        columns=["retailer_id", "store_id", "gtin", "price", "currency", "quantity", "modes", "updated_at"],
        records=[(o.retailer_id, o.store_id, o.gtin, Decimal(o.price_cents) / 100, "EUR", o.quantity, o.mode_bits, now)
                 for o in offers],
    )
    return RandomCatalog(catalog_stores, offers, gtin_list)


def in_stock_within(
    catalog: RandomCatalog, gtin: str, lat: float, lon: float, radius_km: float
) -> list[tuple[str, float]]:
    """The brute-force answer: (store id, km) of every in-stock store offer of `gtin` in the radius, nearest first."""
    where = {(s.retailer_id, s.store_id): s for s in catalog.stores}
    hits = []
    for offer in catalog.offers:
        if offer.gtin != gtin or not offer.store_id or offer.quantity <= 0:
            continue
        store = where[(offer.retailer_id, offer.store_id)]
        distance = great_circle_km(lat, lon, store.lat, store.lon)
        if distance <= radius_km:
            hits.append((offer.store_id, distance))
    return sorted(hits, key=lambda hit: hit[1])
