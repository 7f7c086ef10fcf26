"""Turns the event stream into statistics: per-day counts in PostgreSQL `event_counts`, nothing finer.

A Redis consumer group hands each batch to one consumer, so every edge worker
(or a separate process) can run `aggregate_forever` side by side. Counting is
at-least-once: a crash between the PostgreSQL commit and the XACK counts that
batch twice, which statistics tolerate better than losing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from cache.db import DATABASE_UNAVAILABLE
from cache.gtin import GtinError, normalize_gtin
from cache.keys import Keys

log = logging.getLogger("nearcart.events")
GROUP = "event-counts"
RETENTION = "13 months"
CountKey = tuple[date, str, str, str, str, str]


def _count_key(fields: dict[bytes, bytes]) -> CountKey | None:
    text = {k.decode(): v.decode(errors="replace") for k, v in fields.items()}
    try:
        day = datetime.fromtimestamp(int(text["ts"]) / 1000, tz=UTC).date()
        gtin = normalize_gtin(text["gtin"])
    except (KeyError, ValueError, GtinError):
        return None
    return (
        day,
        text.get("campaign", ""),
        gtin,
        text.get("kind", ""),
        text.get("retailer", ""),
        text.get("country", ""),
    )


async def aggregate_once(
    redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool, consumer: str = "", batch: int = 1000
) -> int:
    """Count one batch of new events into `event_counts`, then drop them from the stream; return how many."""
    consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
    with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
        await redis.xgroup_create(keys.events, GROUP, id="0", mkstream=True)
    # Our own pending entries first (a previous run died before XACK), then new ones.
    # RESP2 shape: [[stream, [(id, fields), ...]]]; redis-py types cover RESP3 too, hence Any.
    read: Any = await redis.xreadgroup(GROUP, consumer, {keys.events: "0"}, count=batch)
    if not read or not read[0][1]:
        read = await redis.xreadgroup(GROUP, consumer, {keys.events: ">"}, count=batch)
    entries: list[tuple[bytes, dict[bytes, bytes]]] = read[0][1] if read else []
    if not entries:
        return 0
    counts: Counter[CountKey] = Counter()
    for _, fields in entries:
        key = _count_key(fields)
        if key is not None:
            counts[key] += 1
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            "INSERT INTO event_counts (day, campaign, gtin, kind, retailer_id, country, count)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (day, campaign, gtin, kind, retailer_id, country)"
            " DO UPDATE SET count = event_counts.count + EXCLUDED.count",
            [(*key, n) for key, n in counts.items()],
            timeout=30,
        )
    ids = [entry_id for entry_id, _ in entries]
    pipe = redis.pipeline(transaction=False)
    pipe.xack(keys.events, GROUP, *ids)
    pipe.xdel(keys.events, *ids)
    await pipe.execute()
    return len(entries)


async def delete_expired_counts(pool: asyncpg.Pool) -> int:
    """SPEC "Privacy": statistics older than 13 months are deleted."""
    status = await pool.execute(
        f"DELETE FROM event_counts WHERE day < current_date - interval '{RETENTION}'", timeout=30
    )
    return int(status.split()[-1])


async def aggregate_forever(redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool, idle_s: float = 5.0) -> None:
    """Background task for `nearcart serve`/`demo`: drain the stream, purge old counts hourly."""
    last_purge = 0.0
    loop = asyncio.get_running_loop()
    while True:
        try:
            if loop.time() - last_purge > 3600:
                await delete_expired_counts(pool)
                last_purge = loop.time()
            if await aggregate_once(redis, keys, pool) == 0:
                await asyncio.sleep(idle_s)
        except (RedisError, *DATABASE_UNAVAILABLE) as exc:
            log.warning("event aggregation paused: %s", exc)
            await asyncio.sleep(idle_s)
