"""Offers no feed has confirmed for too long, hidden from shoppers for the retailers who ask for it.

A retailer's `unconfirmed_offers` setting is 'show' (the default: the offer stays, counted in
`nearcart_offers_unconfirmed`) or 'hide'. For 'hide', the quality check takes its in-stock
offers older than the threshold out of the live index and notes them in `offers_hidden` with
the `updated_at` they had; the index build leaves out the same ones. Once the feed updates such
an offer (or the retailer switches to 'show'), the next check puts it back. The offers path
itself never looks at a timestamp: hiding costs it nothing.
"""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis

from cache.index import OfferWrites, index_writer_lock
from cache.keys import Keys

# The offer as the index holds it, with its store's place (s_num NULL: a delivery offer).
_INDEXED = (
    "o.gtin, r.num AS r_num, s.num AS s_num, s.lat, s.lon, (o.price * 100)::bigint AS cents,"
    " o.currency, o.quantity, o.modes"
)

_HIDE = f"""
WITH stale AS (
    SELECT o.retailer_id, o.store_id, o.updated_at, {_INDEXED}
    FROM offers o JOIN retailers r ON r.retailer_id = o.retailer_id AND r.unconfirmed_offers = 'hide'
    LEFT JOIN stores s ON s.retailer_id = o.retailer_id AND s.store_id = o.store_id
    WHERE o.quantity > 0 AND o.updated_at < now() - $1 * interval '1 second'
      AND (o.store_id = '' OR s.num IS NOT NULL)
      AND NOT EXISTS (SELECT 1 FROM offers_hidden h WHERE h.retailer_id = o.retailer_id
                      AND h.store_id = o.store_id AND h.gtin = o.gtin AND h.updated_at = o.updated_at)
), noted AS (
    INSERT INTO offers_hidden (retailer_id, store_id, gtin, updated_at)
    SELECT retailer_id, store_id, gtin, updated_at FROM stale
    ON CONFLICT (retailer_id, store_id, gtin) DO UPDATE SET updated_at = excluded.updated_at
)
SELECT gtin, r_num, s_num, lat, lon, cents, currency, quantity, modes FROM stale
"""

# Confirmed again (updated since it was hidden), its retailer now shows them, or the offer is gone.
_SHOW = f"""
WITH back AS (
    DELETE FROM offers_hidden h
    WHERE NOT EXISTS (
        SELECT 1 FROM offers o JOIN retailers r ON r.retailer_id = o.retailer_id AND r.unconfirmed_offers = 'hide'
        WHERE o.retailer_id = h.retailer_id AND o.store_id = h.store_id AND o.gtin = h.gtin
          AND o.updated_at = h.updated_at AND o.quantity > 0 AND o.updated_at < now() - $1 * interval '1 second')
    RETURNING h.retailer_id, h.store_id, h.gtin
)
SELECT {_INDEXED}
FROM back b JOIN offers o USING (retailer_id, store_id, gtin)
JOIN retailers r ON r.retailer_id = o.retailer_id
LEFT JOIN stores s ON s.retailer_id = o.retailer_id AND s.store_id = o.store_id
WHERE o.quantity > 0 AND (o.store_id = '' OR s.num IS NOT NULL)
"""

async def apply_unconfirmed(
    conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, unconfirmed_after_s: int
) -> tuple[int, int]:
    """Hide what became unconfirmed, show again what was confirmed; returns (hidden, shown again)."""
    after = float(unconfirmed_after_s)
    async with index_writer_lock(conn):
        async with conn.transaction():
            hide = await conn.fetch(_HIDE, after)
            show = await conn.fetch(_SHOW, after)
        writes = OfferWrites()
        for row in hide:
            offer = (row["cents"], row["currency"], row["quantity"], row["modes"])
            gone = (*offer[:2], 0, offer[3])
            if row["s_num"] is None:
                writes.delivery_offer(row["gtin"], row["r_num"], gone)
            else:
                writes.store_offer(row["gtin"], row["s_num"], row["lon"], row["lat"], offer, gone)
        for row in show:
            offer = (row["cents"], row["currency"], row["quantity"], row["modes"])
            if row["s_num"] is None:
                writes.delivery_offer(row["gtin"], row["r_num"], offer)
            else:
                writes.store_offer(row["gtin"], row["s_num"], row["lon"], row["lat"], None, offer)
        await writes.apply(redis, keys)
    return len(hide), len(show)
