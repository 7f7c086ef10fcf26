"""Each stream entry counted exactly once: crashes at every point, two aggregators racing, the figures kept."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from backoffice.aggregator import GROUP, aggregate_once, delete_expired, prune_counted_ids
from cache import db as catalog_db
from cache.keys import Keys
from edge_api.event_buffer import EventBuffer, append_events, with_event_ids
from edge_api.settings import Settings
from tests.slow_replies import SlowReplies

ROOT = Path(__file__).resolve().parents[2]
GTIN = "03017620422003"


def record(kind: str, **fields: str | int) -> dict[str, str | int | float]:
    return {"kind": kind, "campaign": "spring", "gtin": "3017620422003", "region": "FR-75",
            "ts": int(time.time() * 1000), **fields}


def mixed_events(n: int) -> list[dict[str, str | int | float]]:
    """n loads, n opens, n searches (every other one with offers) and n clicks at 2.99 EUR."""
    events: list[dict[str, str | int | float]] = []
    for i in range(n):
        events.append(record("impression"))
        events.append(record("open"))
        shown = '[["shop","in_store",2],["mart","delivery",1]]' if i % 2 == 0 else "[]"
        events.append(record("search", shown=shown))
        events.append(record("click", retailer="shop", mode="in_store", price_cents=299, currency="EUR"))
    return events


@pytest.fixture
async def pool(settings: Settings, db: asyncpg.Connection) -> AsyncIterator[asyncpg.Pool]:
    pool = await catalog_db.create_pool(settings.database_url)
    yield pool
    await pool.close()


async def totals(db: asyncpg.Connection) -> dict[str, int]:
    sums = ("SELECT coalesce(sum(loads), 0) AS loads, coalesce(sum(opens), 0) AS opens,"
            " coalesce(sum(searches), 0) AS searches, coalesce(sum(searches_with_offers), 0) AS with_offers,"
            " coalesce(sum(offers_shown), 0) AS shown, coalesce(sum(clicks), 0) AS clicks,"
            " coalesce(sum(intent_cents), 0) AS cents FROM ")
    row = await db.fetchrow(sums + "stats_daily")
    # Every event is in FR-75: the roll-up within that region, written in the same transaction, agrees.
    within = await db.fetchrow(sums + "stats_rollup_within WHERE scope = 'g' AND grain = 'd' AND dim = 'a'")
    assert dict(within) == dict(row)
    return dict(row)


def expected(n: int) -> dict[str, int]:
    return {"loads": n, "opens": n, "searches": n, "with_offers": (n + 1) // 2, "shown": 3 * ((n + 1) // 2),
            "clicks": n, "cents": 299 * n}


async def crash_after_commit(point: str) -> None:
    if point == "committed":
        raise KeyboardInterrupt  # what a stop between COMMIT and XACK looks like from here


async def drain(redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool, consumer: str = "survivor") -> None:
    # claim_idle_ms=0: the survivor takes over what a dead consumer left pending at once.
    while await aggregate_once(redis, keys, pool, consumer=consumer, batch=100, claim_idle_ms=0):
        pass


async def test_figures_of_each_kind_land_in_their_row(
    redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    await append_events(redis, keys, [*mixed_events(2), {"kind": "junk"}, record("error", message="boom")])
    await drain(redis, keys, pool)
    rows = await db.fetch("SELECT retailer_id, mode, currency, loads, opens, searches, searches_with_offers,"
                          " offers_shown, clicks, intent_cents FROM stats_daily ORDER BY 1, 2, 3")
    assert [tuple(r) for r in rows] == [
        ("", "", "", 2, 2, 2, 1, 0, 0, 0),
        ("mart", "delivery", "", 0, 0, 0, 0, 1, 0, 0),
        ("shop", "in_store", "", 0, 0, 0, 0, 2, 0, 0),
        ("shop", "in_store", "EUR", 0, 0, 0, 0, 0, 2, 598),
    ]
    assert await redis.xlen(keys.events) == 0
    # The roll-ups add up to the same figures: the monthly product row, the daily series row.
    month = await db.fetchrow("SELECT sum(opens) AS opens, sum(clicks) AS clicks FROM stats_rollup"
                              " WHERE grain = 'm' AND dim = 'p' AND value = $1", GTIN)
    assert (month["opens"], month["clicks"]) == (2, 2)
    by_region = await db.fetchval("SELECT sum(offers_shown) FROM stats_rollup WHERE grain = 'd' AND dim = 'g'"
                                  " AND value = 'FR-75'")
    assert by_region == 3


async def test_a_batch_with_no_retailer_nor_region_is_counted_and_the_next_one_too(
    redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    """Opens of shoppers whose address locates nowhere move no row within a retailer or a region."""
    await append_events(redis, keys, [record("open", region="") for _ in range(3)])
    await drain(redis, keys, pool)
    await append_events(redis, keys, [record("open")])
    await drain(redis, keys, pool)
    assert await db.fetchval("SELECT sum(opens) FROM stats_daily") == 4
    assert await db.fetchval("SELECT sum(opens) FROM stats_rollup WHERE grain = 'd' AND dim = 'a'") == 4
    assert await db.fetchval("SELECT sum(opens) FROM stats_rollup_within WHERE grain = 'd' AND dim = 'a'") == 1
    assert await redis.xlen(keys.events) == 0


@pytest.mark.parametrize("point", ["read", "counted", "committed"])
async def test_aggregator_killed_at_each_point_counts_every_event_once(
    settings: Settings, redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool, db: asyncpg.Connection, point: str
) -> None:
    n = 250
    await append_events(redis, keys, mixed_events(n))
    doomed = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.backoffice.crashing_aggregator", settings.redis_url, settings.database_url,
        keys.prefix, point, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(doomed.communicate(), 60)
    assert doomed.returncode == -signal.SIGKILL, stderr.decode()
    pending = await redis.xpending(keys.events, GROUP)
    assert pending["pending"] == 100  # its batch was left unacknowledged
    await drain(redis, keys, pool)
    assert await totals(db) == expected(n)
    assert await redis.xlen(keys.events) == 0


async def test_crash_after_commit_then_replay_counts_nothing_twice(
    redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    await append_events(redis, keys, mixed_events(10))
    with pytest.raises(KeyboardInterrupt):
        await aggregate_once(redis, keys, pool, consumer="a", checkpoint=crash_after_commit)
    assert await totals(db) == expected(10)
    # The same consumer restarts: it re-reads its own pending entries first, and recognises them.
    assert await aggregate_once(redis, keys, pool, consumer="a") == 40
    assert await totals(db) == expected(10)
    assert await redis.xlen(keys.events) == 0


async def test_two_aggregators_racing_on_the_same_entries_count_them_once(
    redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    await append_events(redis, keys, mixed_events(50))
    paused, resume = asyncio.Event(), asyncio.Event()

    async def slow(point: str) -> None:
        if point == "counted":  # inside its transaction, its ids inserted but not committed
            paused.set()
            await resume.wait()

    first = asyncio.create_task(aggregate_once(redis, keys, pool, consumer="slow", checkpoint=slow))
    await paused.wait()
    # The second takes over the very same pending entries (XAUTOCLAIM) while the first holds them.
    second = asyncio.create_task(aggregate_once(redis, keys, pool, consumer="fast", claim_idle_ms=0))
    await asyncio.sleep(0.3)
    assert not second.done()  # waiting on the first one's uncommitted ids
    resume.set()
    assert await first == 200
    assert await second == 200
    assert await totals(db) == expected(50)


async def test_aggregator_that_claims_a_committed_batch_counts_nothing(
    redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    await append_events(redis, keys, mixed_events(20))
    stalled = asyncio.Event()

    async def stall_before_ack(point: str) -> None:
        if point == "committed":
            stalled.set()
            await asyncio.sleep(3600)

    first = asyncio.create_task(aggregate_once(redis, keys, pool, consumer="stalled", checkpoint=stall_before_ack))
    await stalled.wait()
    await drain(redis, keys, pool)
    first.cancel()
    assert await totals(db) == expected(20)
    assert await redis.xlen(keys.events) == 0


async def test_counted_ids_are_pruned_once_their_entries_left_the_stream(
    redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    await append_events(redis, keys, mixed_events(5))
    await drain(redis, keys, pool)
    await append_events(redis, keys, mixed_events(1))
    with pytest.raises(KeyboardInterrupt):  # counted, still in the stream: their ids must stay
        await aggregate_once(redis, keys, pool, consumer="x", batch=2, checkpoint=crash_after_commit)
    await db.execute("UPDATE stats_entries_counted SET counted_at = now() - interval '1 hour'")
    assert await prune_counted_ids(redis, keys, pool) == 20
    assert await db.fetchval("SELECT count(*) FROM stats_entries_counted") == 2


async def test_event_ids_are_forgotten_a_day_after_their_first_write_and_not_before(
    redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    await append_events(redis, keys, with_event_ids(mixed_events(2)))
    await drain(redis, keys, pool)
    await db.execute("UPDATE stats_entries_counted SET counted_at = now() - interval '2 days'")
    assert await prune_counted_ids(redis, keys, pool) == 0  # written now: a copy may still come
    day_ago_ms = (time.time() - 24 * 3600 - 60) * 1000
    await db.execute("UPDATE stats_entries_counted SET ms = $1 WHERE seq % 2 = 0", int(day_ago_ms))
    older = await db.fetchval("SELECT count(*) FROM stats_entries_counted WHERE seq % 2 = 0")
    assert await prune_counted_ids(redis, keys, pool) == older
    assert await db.fetchval("SELECT count(*) FROM stats_entries_counted") == 8 - older


async def test_figures_older_than_13_months_are_deleted(pool: asyncpg.Pool, db: asyncpg.Connection) -> None:
    await db.execute(
        "INSERT INTO stats_daily (day, campaign, gtin, opens) VALUES"
        f" (current_date - interval '14 months', 'spring', '{GTIN}', 5),"
        f" (current_date - interval '12 months', 'spring', '{GTIN}', 7)"
    )
    await db.execute("UPDATE stats_daily SET region = 'FR-75'")
    await db.execute("SELECT stats_rebuild_rollups()")
    assert await delete_expired(pool) == 1
    assert await db.fetchval("SELECT sum(opens) FROM stats_daily") == 7
    assert await db.fetchval("SELECT sum(opens) FROM stats_rollup WHERE grain = 'd' AND dim = 'a'") == 7
    for grain in ("d", "m"):
        assert await db.fetchval("SELECT sum(opens) FROM stats_rollup_within WHERE scope = 'g' AND grain::text = $1"
                                 " AND dim = 'a'", grain) == 7


def test_event_day_is_the_servers_utc_day() -> None:
    from backoffice.aggregator import entry_figures

    noon = int(datetime(2026, 3, 1, 23, 59, tzinfo=UTC).timestamp() * 1000)
    figures = entry_figures({b"kind": b"open", b"campaign": b"c", b"gtin": b"3017620422003", b"ts": str(noon).encode()})
    assert [key[0].isoformat() for key, _ in figures] == ["2026-03-01"]


async def test_an_event_whose_write_timed_out_after_redis_took_it_counts_once(
    redis: aioredis.Redis, settings: Settings, keys: Keys, pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    """A request's XADD lands but its reply comes after the 100 ms budget: the worker keeps the
    events and flushes them again, so the stream holds each twice; each counts once."""
    here = aioredis.Redis.from_url(settings.redis_url)
    where = here.connection_pool.connection_kwargs
    proxy = await SlowReplies(where.get("host", "127.0.0.1"), where.get("port", 6379)).start()
    slow = aioredis.Redis(host="127.0.0.1", port=proxy.port, db=where.get("db", 0), socket_timeout=0.1,
                          retry=Retry(NoBackoff(), 0))
    buffer = EventBuffer(slow, keys, flush_redis=redis)
    try:
        await buffer.append(mixed_events(3), "beacon")  # quick replies: written once
        proxy.delay_s = 0.5
        await buffer.append(mixed_events(4), "beacon")  # written, but the reply is late: kept too
        assert len(buffer) == 16
        assert await buffer.flush() == 16
        assert await redis.xlen(keys.events) == 12 + 16 + 16
    finally:
        await slow.aclose()
        await here.aclose()
        await proxy.stop()
    await drain(redis, keys, pool)
    assert await totals(db) == expected(7)


async def test_a_kept_event_written_twice_by_its_worker_counts_once(
    redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    """A flush whose reply was lost is written again: same event ids, new stream ids."""
    kept = [{**event, "eid": f"{i:016x}"} for i, event in enumerate(mixed_events(5))]
    await append_events(redis, keys, kept)
    await drain(redis, keys, pool)
    await append_events(redis, keys, kept + kept)
    await drain(redis, keys, pool)
    assert await totals(db) == expected(5)
