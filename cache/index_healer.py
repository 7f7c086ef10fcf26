"""The index heals itself: when no whole index is live, one worker rebuilds it from PostgreSQL.

Every edge worker runs one `IndexHealer` in its lifespan. Each checks the primary every
`check_s` (plus jitter, so workers do not ask in step); when the live index is missing or
incomplete (`cache.index_live`: Redis restarted empty, a failover to a replica that never had
it), a worker takes the rebuild lock (SET NX PX with a token of its own, renewed while it
builds, released by compare-and-delete) and rebuilds; the others see the lock taken and go
on answering from what they have, and their `IndexReader` adopts the new version when it
goes live. The PostgreSQL writer lock inside `build_index` still orders this build after
an ingest or an SRE's `nearcart index build`, and `unless_live` makes it a no-op when one of
those has just produced a whole index.

The build is async I/O in batches of `HEAL_BATCH` rows, so the building worker keeps answering
between two round trips.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time

import asyncpg
from redis.exceptions import RedisError

from cache.db import DATABASE_UNAVAILABLE
from cache.index import build_index
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


class IndexHealer:
    """Watches for a missing index and rebuilds it under a Redis lock (one worker at a time)."""

    def __init__(self, primary: RedisTopology | str, database_url: str, keys: Keys, check_s: float = 1.0,
                 lock_ttl_s: float = 15.0, grace_s: float = 3.0) -> None:
        """`primary`: the worker's topology (so a rebuild after a failover lands on the new primary), or a URL."""
        topology = RedisTopology(primary) if isinstance(primary, str) else primary
        self.database_url = database_url
        self.keys = keys
        self.check_s = check_s
        self.lock_ttl_s = lock_ttl_s
        self.grace_s = grace_s
        # What this worker rebuilt, for logs and tests: (version, seconds the build took).
        self.rebuilt: list[tuple[int, float]] = []
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
        """Rebuild if no whole index is live and no other worker is at it; the version built, else None."""
        if await live_index(self._redis, self.keys) is not None:
            return None
        token = secrets.token_hex(16)
        ttl_ms = int(self.lock_ttl_s * 1000)
        if not await self._redis.set(self.keys.rebuild_lock, token, nx=True, px=ttl_ms):
            return None  # another worker is rebuilding: our reader picks up its version
        try:
            log.warning("no whole index live: rebuilding it from PostgreSQL")
            started = time.perf_counter()
            version = await self._build_holding(token, ttl_ms)
            took = time.perf_counter() - started
            self.rebuilt.append((version, took))
            log.warning("index version %d rebuilt in %.1f s", version, took)
            return version
        finally:
            try:
                await self._redis.eval(_RELEASE, 1, self.keys.rebuild_lock, token)
            except (RedisError, OSError) as exc:
                log.debug("rebuild lock not released (it expires by itself): %s", exc)

    async def _build_holding(self, token: str, ttl_ms: int) -> int:
        """Build while renewing the lock; give up the build if the lock is lost (Redis restarted again)."""
        build = asyncio.create_task(self._build(), name="nearcart-index-rebuild")
        try:
            while True:
                done, _ = await asyncio.wait([build], timeout=self.lock_ttl_s / 3)
                if done:
                    return build.result()
                renewed = await self._redis.eval(_RENEW, 1, self.keys.rebuild_lock, token, ttl_ms)
                if not renewed:
                    raise RedisError("rebuild lock lost while building")
        finally:
            if not build.done():
                await stop_task(build)

    async def _build(self) -> int:
        conn = await asyncpg.connect(self.database_url, timeout=5.0)
        try:
            return await build_index(conn, self._redis, self.keys, grace_s=self.grace_s, unless_live=True,
                                     batch=HEAL_BATCH)
        finally:
            await conn.close()
