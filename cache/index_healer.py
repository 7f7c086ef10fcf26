"""The index heals itself: when no whole index is live, or the live one lost writes, one worker rebuilds it.

Every edge worker runs one `IndexHealer` in its lifespan. Each checks the primary every
`check_s` (plus jitter, so workers do not ask in step). It rebuilds from PostgreSQL when:
- the live index is missing or incomplete (`cache.index_live`: Redis restarted empty, a failover
  to a replica that never had it);
- the live index is whole but misses writes PostgreSQL has: Redis holds another write generation
  than PostgreSQL (cache/index_generation.py) while no writer holds the index writer lock. An
  ingest whose Redis writes failed after its batches committed leaves Redis behind, and so does a
  failover to a replica that had not received the last writes (replication is asynchronous).
  A writer at work is not a loss: its generation is recorded once its writes are in, so the check
  waits for the lock to be free (it tries it, never waits for it). When only the store and
  retailer directory is behind, the worker refreshes that instead.
The worker that takes the rebuild lock (SET NX PX with a token of its own, renewed while it
builds, released by compare-and-delete) rebuilds; the others see the lock taken and go on
answering from what they have, and their `IndexReader` adopts the new version when it goes
live. The PostgreSQL writer lock inside `build_index` still orders this build after an ingest
or an SRE's `nearcart index build`, and `unless_live` makes it a no-op when one of those has
just produced a whole index at PostgreSQL's generation.

The periodic check reads two small values from each side (one PostgreSQL statement, two GETs);
the offers path pays nothing for it.

The build is async I/O in batches of `HEAL_BATCH` rows, so the building worker keeps answering
between two round trips.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Awaitable
from typing import TypeVar

import asyncpg
from redis.exceptions import RedisError

from cache.db import DATABASE_UNAVAILABLE, create_pool
from cache.directory import refresh_directory
from cache.index import WRITER_LOCK, build_index, index_writer_lock
from cache.index_generation import DIRECTORY, OFFERS, directory_behind, redis_generation
from cache.index_live import live_index
from cache.keys import Keys
from cache.redis_topology import RedisTopology
from cache.tasks import stop_task

log = logging.getLogger("nearcart.index")

# Rows per round trip while healing. Rebuilding 100k offers on this project's loaded 2-core machine,
# the worst stall of the building worker's loop was 190-290 ms with the CLI's 10,000 and 50-90 ms with
# 2,000; 500 did no better (the rest is the machine's scheduling, not the build).
HEAL_BATCH = 2_000
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
# Whether the index writer lock is free (taken and let go within this one statement), and the generations
# the index should be at: one round trip.
_CATALOG_GENERATIONS = f"""
SELECT pg_try_advisory_xact_lock($1) AS free,
    coalesce((SELECT generation FROM index_generations WHERE prefix = $2 AND part = '{OFFERS}'), 0) AS offers,
    coalesce((SELECT generation FROM index_generations WHERE prefix = $2 AND part = '{DIRECTORY}'), 0) AS directory
"""
T = TypeVar("T")


class IndexHealer:
    """Watches for a missing index or lost writes and rebuilds it under a Redis lock (one worker at a time)."""

    def __init__(self, primary: RedisTopology | str, database_url: str, keys: Keys, check_s: float = 1.0,
                 lock_ttl_s: float = 15.0, grace_s: float = 3.0, pool: asyncpg.Pool | None = None) -> None:
        """`primary`: the worker's topology (so a rebuild after a failover lands on the new primary), or a URL.
        `pool`: the worker's PostgreSQL pool, for the periodic check (without one the healer keeps its own)."""
        topology = RedisTopology(primary) if isinstance(primary, str) else primary
        self.database_url = database_url
        self.keys = keys
        self.check_s = check_s
        self.lock_ttl_s = lock_ttl_s
        self.grace_s = grace_s
        # What this worker rebuilt, for logs and tests: (version, seconds the build took).
        self.rebuilt: list[tuple[int, float]] = []
        # Seconds each directory refresh took (only the directory was behind).
        self.refreshed: list[float] = []
        self._pool = pool
        self._own_pool = pool is None
        # Its own patient client: the request path's 50 ms socket timeout would fail a build's big replies.
        self._redis = topology.client(socket_timeout=30.0, socket_connect_timeout=1.0)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch_forever(), name="nearcart-index-healer")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        await self._redis.aclose()
        if self._own_pool and self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _watch_forever(self) -> None:
        while True:
            await asyncio.sleep(self.check_s * random.uniform(0.5, 1.0))
            try:
                await self.heal_once()
            except (RedisError, *DATABASE_UNAVAILABLE) as exc:
                # Redis or PostgreSQL away: the next check tries again; the offers path says 503 meanwhile.
                log.debug("index check failed: %s", exc)
            except Exception:
                # A bug must not end the watch: the next loss would then go unhealed.
                log.exception("index check failed")

    async def heal_once(self) -> int | None:
        """Rebuild if no whole index is live or it lost writes, and no other worker is at it; the version built,
        else None (also when only the directory was refreshed)."""
        if await live_index(self._redis, self.keys) is None:
            lost, why = OFFERS, "no whole index live"
        else:
            behind = await self._lost_writes()
            if behind is None:
                return None
            lost, why = behind
        token = secrets.token_hex(16)
        ttl_ms = int(self.lock_ttl_s * 1000)
        if not await self._redis.set(self.keys.rebuild_lock, token, nx=True, px=ttl_ms):
            return None  # another worker is rebuilding: our reader picks up its version
        try:
            started = time.perf_counter()
            if lost == DIRECTORY:
                log.warning("%s: refreshing the directory from PostgreSQL", why)
                await self._holding(token, ttl_ms, self._refresh_directory())
                self.refreshed.append(time.perf_counter() - started)
                return None
            log.warning("%s: rebuilding the index from PostgreSQL", why)
            version = await self._holding(token, ttl_ms, self._build())
            took = time.perf_counter() - started
            self.rebuilt.append((version, took))
            log.warning("index version %d rebuilt in %.1f s", version, took)
            return version
        finally:
            try:
                await self._redis.eval(_RELEASE, 1, self.keys.rebuild_lock, token)
            except (RedisError, OSError) as exc:
                log.debug("rebuild lock not released (it expires by itself): %s", exc)

    async def _lost_writes(self) -> tuple[str, str] | None:
        """(OFFERS or DIRECTORY, why) when Redis holds another write generation than PostgreSQL, else None.

        Nothing while a writer holds the index writer lock: an ingest in progress records its generation
        when its writes are in. PostgreSQL is read before Redis, so a writer finishing in between makes
        Redis look newer, never behind.
        """
        if self._pool is None:
            self._pool = await create_pool(self.database_url, timeout_s=5.0, min_size=0, max_size=1)
        row = await self._pool.fetchrow(_CATALOG_GENERATIONS, WRITER_LOCK, self.keys.prefix)
        assert row is not None
        if not row["free"]:
            return None
        for part, key in ((OFFERS, self.keys.generation), (DIRECTORY, self.keys.directory_generation)):
            held = await redis_generation(self._redis, key)
            if held != row[part]:
                return part, f"the index's {part} lost writes (generation {held} in Redis, {row[part]} in PostgreSQL)"
        return None

    async def _holding(self, token: str, ttl_ms: int, work: Awaitable[T]) -> T:
        """Run `work` while renewing the lock; give it up if the lock is lost (Redis restarted again)."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait([task], timeout=self.lock_ttl_s / 3)
                if done:
                    return task.result()
                renewed = await self._redis.eval(_RENEW, 1, self.keys.rebuild_lock, token, ttl_ms)
                if not renewed:
                    raise RedisError("rebuild lock lost while building")
        finally:
            if not task.done():
                await stop_task(task)

    async def _build(self) -> int:
        conn = await asyncpg.connect(self.database_url, timeout=5.0)
        try:
            return await build_index(conn, self._redis, self.keys, grace_s=self.grace_s, unless_live=True,
                                     batch=HEAL_BATCH)
        finally:
            await conn.close()

    async def _refresh_directory(self) -> None:
        """Copy the directory again, ordered after any writer (stores that move hold the writer lock)."""
        conn = await asyncpg.connect(self.database_url, timeout=5.0)
        try:
            async with index_writer_lock(conn):
                if await directory_behind(conn, self._redis, self.keys) is not None:
                    await refresh_directory(conn, self._redis, self.keys)
        finally:
            await conn.close()
