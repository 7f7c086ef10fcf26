"""Write generations: how the index knows it lost writes PostgreSQL kept (issue 17).

PostgreSQL holds, per key prefix, the generation the Redis index should be at (table
`index_generations`, two parts). Every catalog change the index must follow bumps its part's
generation in the same transaction as the change, and Redis is told the new generation only once
the change's Redis writes succeeded:

- `offers` (the offer keys): bumped by every writer of the index (an ingest batch that changed
  offers, stores that moved, the quality check's hide/show), each holding the index writer lock
  (cache/index.py), so one writer's bumps are consecutive. At the end the writer records its last
  generation in Redis (`Keys.generation`) only if Redis still holds the one before its first:
  a Redis that lacked earlier changes (a write lost, a failover to a replica that missed it) keeps
  its older generation instead of hiding the gap. `nearcart index build` records the generation it
  built from (read under the same lock, so no change is half-way).
- `directory` (stores and retailers): bumped with every change of them; a directory refresh copies
  them whole, so it records the generation it read before copying (`Keys.directory_generation`).

A Redis generation other than PostgreSQL's while no writer is at work means the index misses
something: the API's index healer (cache/index_healer.py) then rebuilds it (or refreshes the
directory). "Other", not only "older": a PostgreSQL restored from a backup, or one that lost its
last asynchronous commits, is behind an index that holds changes it no longer has.
"""

from __future__ import annotations

import logging

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from cache.keys import Keys

log = logging.getLogger("nearcart.index")

OFFERS = "offers"
DIRECTORY = "directory"

_BUMP = """
INSERT INTO index_generations (prefix, part, generation) VALUES ($1, $2, 1)
ON CONFLICT (prefix, part) DO UPDATE SET generation = index_generations.generation + 1
RETURNING generation
"""
_READ = "SELECT coalesce((SELECT generation FROM index_generations WHERE prefix = $1 AND part = $2), 0)"
# Compare-and-set: the new generation only over the one the writer found before its first change.
_RECORD = """
local held = tonumber(redis.call('GET', KEYS[1]) or '0')
if held ~= tonumber(ARGV[1]) then return held end
redis.call('SET', KEYS[1], ARGV[2])
return -1
"""


class IndexWritesLost(RedisError):
    """Changes committed to PostgreSQL whose Redis writes failed: the index misses them until it is rebuilt.

    A RedisError, so every caller that handles Redis failing handles this too; its message says what to do.
    """

    def __init__(self, changes: int, cause: BaseException) -> None:
        self.changes = changes
        super().__init__(
            f"{changes} change(s) committed to PostgreSQL did not reach the Redis index"
            f" ({type(cause).__name__}: {str(cause).rstrip('.')})."
            " The API's index healer rebuilds the index once Redis answers; without a running API, run"
            " `nearcart index build`. Re-running this ingest does not: it finds"
            " those rows already stored and writes nothing."
        )


async def bump_generation(conn: asyncpg.Connection, keys: Keys, part: str) -> int:
    """The part's next generation, in the caller's transaction (the change and its bump commit together)."""
    return int(await conn.fetchval(_BUMP, keys.prefix, part))


async def catalog_generation(conn: asyncpg.Connection, keys: Keys, part: str) -> int:
    """The generation the index should be at for `part` (0 before any change was counted)."""
    return int(await conn.fetchval(_READ, keys.prefix, part))


async def redis_generation(redis: aioredis.Redis, key: str) -> int:
    """The generation Redis says it holds under `key` (0 when absent: a Redis restarted empty)."""
    raw = await redis.get(key)
    return int(raw) if raw is not None else 0


class GenerationBumps:
    """The `offers` generations one index writer bumped, recorded in Redis once all its writes are in.

    Bumps may come from two connections at once (an offers ingest's lanes): their order is PostgreSQL's
    (the generation row is locked until each bump commits), so the writer's are `first`..`last`.
    """

    __slots__ = ("first", "last")

    def __init__(self) -> None:
        self.first: int | None = None
        self.last = 0

    async def bump(self, conn: asyncpg.Connection, keys: Keys) -> int:
        """Count one change, in the caller's transaction; the caller holds the index writer lock."""
        generation = await bump_generation(conn, keys, OFFERS)
        self.first = generation if self.first is None else min(self.first, generation)
        self.last = max(self.last, generation)
        return generation

    async def record(self, redis: aioredis.Redis, keys: Keys) -> bool:
        """Tell Redis it has every change up to the last bump; call only after every write succeeded.

        False when Redis already missed changes before this writer's (it holds another generation than
        the one before `first`): it then keeps that one, and the healer rebuilds the index.
        """
        if self.first is None:
            return True
        expected, last = self.first - 1, self.last
        self.first, self.last = None, 0
        held = int(await redis.eval(_RECORD, 1, keys.generation, expected, last))
        if held < 0:
            return True
        log.warning("the index misses changes from before generation %d (Redis holds %d): the API's index healer"
                    " rebuilds it, or run `nearcart index build`", expected + 1, held)
        return False


async def index_behind(conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys) -> tuple[int, int] | None:
    """(Redis's, PostgreSQL's) `offers` generation when they differ, else None. PostgreSQL is read
    first: a writer finishing in between then makes Redis look newer, never a loss."""
    catalog = await catalog_generation(conn, keys, OFFERS)
    held = await redis_generation(redis, keys.generation)
    return (held, catalog) if held != catalog else None


async def directory_behind(conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys) -> tuple[int, int] | None:
    """As `index_behind`, for the store and retailer directory."""
    catalog = await catalog_generation(conn, keys, DIRECTORY)
    held = await redis_generation(redis, keys.directory_generation)
    return (held, catalog) if held != catalog else None
