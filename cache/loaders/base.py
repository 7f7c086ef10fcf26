"""What every feed loader does: validate rows into records, write batches of them, finish once.

`cache.ingest` drives one loader per run: it calls `validate` on every row of the feed,
hands full batches of records to `flush` (the next batch is parsed meanwhile), and calls
`finish` after the last one, all within `session()`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from cache.keys import Keys


class Loader:
    kind = ""
    loaded = 0
    index_changes = 0
    # Changes committed to PostgreSQL whose Redis writes have not succeeded yet: more than 0 when the run
    # stops means the index misses them (cache/index_generation.py says how it finds out and heals).
    unindexed = 0
    # Whether `add_connection` can take a second connection to flush on.
    parallel = False
    validate: Callable[[int, tuple[Any, ...]], tuple[Any, ...]]

    def __init__(self, conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, batch_rows: int) -> None:
        self.conn, self.redis, self.keys = conn, redis, keys
        # Rows in a full batch: `flush` is handed at most this many records at a time.
        self.batch_rows = batch_rows

    @classmethod
    async def open(cls, conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, batch_rows: int) -> Loader:
        raise NotImplementedError

    async def flush(self, records: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def session(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Held for the whole run, around every flush and `finish`."""
        return contextlib.nullcontext()

    async def finish(self) -> None:
        """Work done once after the last batch."""

    async def add_connection(self, conn: asyncpg.Connection) -> None:
        raise NotImplementedError


async def create_staging(conn: asyncpg.Connection, table: str, columns: str) -> None:
    """The session's TEMP table a batch is COPYed into; each batch's commit empties it."""
    await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({columns}) ON COMMIT DELETE ROWS")
