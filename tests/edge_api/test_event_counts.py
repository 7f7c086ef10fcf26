from __future__ import annotations

import time

import asyncpg
import redis.asyncio as aioredis

from cache import db as catalog_db
from cache.keys import Keys
from edge_api.event_counts import aggregate_once, delete_expired_counts
from edge_api.events import append_events
from edge_api.settings import Settings


def beacon(kind: str, retailer: str = "") -> dict[str, str | int | float]:
    return {
        "kind": kind,
        "campaign": "demo",
        "gtin": "3017620422003",
        "retailer": retailer,
        "country": "FR",
        "ip": "81.2.69.0",
        "ts": int(time.time() * 1000),
    }


async def test_stream_events_become_daily_counts_and_leave_the_stream(
    settings: Settings, redis: aioredis.Redis, keys: Keys, db: asyncpg.Connection
) -> None:
    await append_events(redis, keys, [beacon("open"), beacon("open"), beacon("click", "shop"), {"kind": "junk"}])
    pool = await catalog_db.create_pool(settings.database_url)
    try:
        assert await aggregate_once(redis, keys, pool, consumer="t") == 4
        assert await aggregate_once(redis, keys, pool, consumer="t") == 0
    finally:
        await pool.close()
    rows = await db.fetch("SELECT kind, retailer_id, country, gtin, count FROM event_counts ORDER BY kind")
    assert [tuple(r) for r in rows] == [
        ("click", "shop", "FR", "03017620422003", 1),
        ("open", "", "FR", "03017620422003", 2),
    ]
    assert await redis.xlen(keys.events) == 0


async def test_counts_older_than_13_months_are_deleted(settings: Settings, db: asyncpg.Connection) -> None:
    await db.execute(
        "INSERT INTO event_counts (day, campaign, gtin, kind, count) VALUES"
        " (current_date - interval '14 months', 'demo', '03017620422003', 'open', 5),"
        " (current_date - interval '12 months', 'demo', '03017620422003', 'open', 7)"
    )
    pool = await catalog_db.create_pool(settings.database_url)
    try:
        assert await delete_expired_counts(pool) == 1
    finally:
        await pool.close()
    assert await db.fetchval("SELECT sum(count) FROM event_counts") == 7
