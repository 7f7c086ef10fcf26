"""Offers no feed has confirmed for too long: shown to shoppers as unconfirmed, or hidden from them.

A retailer's `unconfirmed_offers` setting is 'show' (the default: the offer stays, flagged
unconfirmed, and is counted in `nearcart_offers_unconfirmed`) or 'hide'. The quality check compares
the in-stock offers older than the threshold with what it noted last time in `offers_unconfirmed`
(each offer's `updated_at` then, and whether it was hidden), and rewrites the index entries of those
whose verdict changed: a hidden offer leaves the index, a shown one carries `UNCONFIRMED_BIT` among
its mode bits, and one its feed updated since (or whose retailer changed its choice) becomes a plain
offer again or moves between the two. The index build applies the same notes (cache/index.py
`_OFFER_ROWS`), and a feed that rewrites an offer writes it plain (its `updated_at` moved: the feed
confirmed it), removing its old member in either form when its retailer has flagged offers (the
index holds a flagged member only for an offer noted here, not hidden).

The offers path itself never looks at a timestamp: it reads the flag from the mode bits it decodes
anyway, so neither hiding nor flagging costs it anything.
"""

from __future__ import annotations

from typing import NamedTuple

import asyncpg
import redis.asyncio as aioredis

from cache.index import OfferWrites, index_writer_lock
from cache.index_generation import GenerationBumps
from cache.keys import UNCONFIRMED_BIT, Keys

_SAME_OFFER = "{a}.retailer_id = {b}.retailer_id AND {a}.store_id = {b}.store_id AND {a}.gtin = {b}.gtin"

# Notes what changed since the last check and returns those offers, with their index entry and their new
# verdict (`hidden`: NULL a plain offer, false flagged unconfirmed, true left out). A note is cleared when
# its offer is no longer due (its feed confirmed it, it is out of stock or gone); a due offer is noted
# anew when it has no note for its current `updated_at` and its retailer's current choice. The two sets
# of notes are disjoint (by offer), as one statement may change a row only once.
_VERDICTS = f"""
WITH due AS (
    SELECT o.retailer_id, o.store_id, o.gtin, o.updated_at, r.unconfirmed_offers = 'hide' AS hidden
    FROM offers o JOIN retailers r ON r.retailer_id = o.retailer_id
    WHERE o.quantity > 0 AND o.updated_at < now() - $1 * interval '1 second'
), cleared AS (
    DELETE FROM offers_unconfirmed u
    WHERE NOT EXISTS (SELECT 1 FROM due d WHERE {_SAME_OFFER.format(a="d", b="u")})
    RETURNING u.retailer_id, u.store_id, u.gtin, NULL::boolean AS hidden
), noted AS (
    INSERT INTO offers_unconfirmed (retailer_id, store_id, gtin, updated_at, hidden)
    SELECT d.retailer_id, d.store_id, d.gtin, d.updated_at, d.hidden FROM due d
    WHERE NOT EXISTS (SELECT 1 FROM offers_unconfirmed u WHERE {_SAME_OFFER.format(a="d", b="u")}
                      AND u.updated_at = d.updated_at AND u.hidden = d.hidden)
    ON CONFLICT (retailer_id, store_id, gtin) DO UPDATE SET updated_at = excluded.updated_at, hidden = excluded.hidden
    RETURNING retailer_id, store_id, gtin, hidden
)
SELECT o.gtin, r.num AS r_num, s.num AS s_num, s.lat, s.lon, (o.price * 100)::bigint AS cents,
    o.currency, o.quantity, o.modes, t.hidden
FROM (SELECT * FROM cleared UNION ALL SELECT * FROM noted) t
JOIN offers o ON {_SAME_OFFER.format(a="o", b="t")}
JOIN retailers r ON r.retailer_id = o.retailer_id
LEFT JOIN stores s ON s.retailer_id = o.retailer_id AND s.store_id = o.store_id
WHERE o.quantity > 0 AND (o.store_id = '' OR s.num IS NOT NULL)
"""


class Verdicts(NamedTuple):
    """How many index entries one check changed, by what they became."""

    hidden: int
    flagged: int
    plain: int


async def apply_unconfirmed(
    conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, unconfirmed_after_s: int
) -> Verdicts:
    """Hide, flag or clear the offers whose verdict changed since the last check, in the notes and the index."""
    hidden = flagged = plain = 0
    bumps = GenerationBumps()  # the index's write generation moves with these changes (cache/index_generation.py)
    async with index_writer_lock(conn):
        async with conn.transaction():
            rows = await conn.fetch(_VERDICTS, float(unconfirmed_after_s))
            if rows:
                await bumps.bump(conn, keys)
        writes = OfferWrites()
        for row in rows:
            offer = (row["cents"], row["currency"], row["quantity"], row["modes"])
            if row["hidden"] is None:
                new, plain = offer, plain + 1
            elif row["hidden"]:
                new, hidden = (offer[0], offer[1], 0, offer[3]), hidden + 1
            else:
                new, flagged = (*offer[:3], offer[3] | UNCONFIRMED_BIT), flagged + 1
            if row["s_num"] is None:
                writes.delivery_offer(row["gtin"], row["r_num"], new)
            else:
                # The plain offer as `old`: either form of it goes (OfferWrites.store_offer), `new` comes.
                writes.store_offer(row["gtin"], row["s_num"], row["lon"], row["lat"], offer, new)
        await writes.apply(redis, keys)
        await bumps.record(redis, keys)
    return Verdicts(hidden, flagged, plain)
