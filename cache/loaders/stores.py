"""Loads stores: one upsert per batch; then the directory is refreshed and moved stores' offers follow them.

The run holds the index writer lock: a batch that moves stores bumps the index's write generation
(cache/index_generation.py), which only a writer holding it may do.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from cache.directory import refresh_directory
from cache.index import index_writer_lock, reposition_store_offers
from cache.index_generation import DIRECTORY, GenerationBumps, bump_generation
from cache.keys import Keys
from cache.loaders.base import Loader, create_staging
from cache.row_rules import store_validator


class StoreLoader(Loader):
    kind = "stores"

    def __init__(self, conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, batch_rows: int) -> None:
        super().__init__(conn, redis, keys, batch_rows)
        self.moved: list[int] = []  # numbers of stores whose coordinates changed
        self.bumps = GenerationBumps()

    @classmethod
    async def open(cls, conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, batch_rows: int) -> Loader:
        loader = cls(conn, redis, keys, batch_rows)
        retailers = {row[0] for row in await conn.fetch("SELECT retailer_id FROM retailers")}
        loader.validate = store_validator(retailers)
        await create_staging(
            conn, "nearcart_stores_in", "seq bigint, retailer_id text, store_id text, name text, address text,"
            " postal_code text, city text, country text, lat float8, lon float8, approximate bool",
        )
        return loader

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        async with index_writer_lock(self.conn):
            yield

    async def flush(self, records: list[tuple[Any, ...]]) -> None:
        async with self.conn.transaction():
            await self.conn.copy_records_to_table("nearcart_stores_in", records=records)
            rows = await self.conn.fetch(_STORE_UPSERT)
            moved = [row["num"] for row in rows if row["moved"]]
            if rows:
                await bump_generation(self.conn, self.keys, DIRECTORY)
            if moved:
                await self.bumps.bump(self.conn, self.keys)
        self.loaded += len(rows)
        self.unindexed += len(rows)
        self.moved += moved

    async def finish(self) -> None:
        if not self.loaded:
            return
        await refresh_directory(self.conn, self.redis, self.keys)
        if self.moved:
            async with index_writer_lock(self.conn):
                await reposition_store_offers(self.conn, self.redis, self.keys, self.moved)
            self.index_changes += len(self.moved)
        await self.bumps.record(self.redis, self.keys)
        self.unindexed = 0


_STORE_UPSERT = """
WITH s AS (
    SELECT DISTINCT ON (retailer_id, store_id) * FROM nearcart_stores_in ORDER BY retailer_id, store_id, seq DESC
), changed AS (
    UPDATE stores st SET name = s.name, address = s.address, postal_code = s.postal_code, city = s.city,
        country = s.country, lat = s.lat, lon = s.lon, approximate = s.approximate, updated_at = now()
    FROM s, stores before
    WHERE st.retailer_id = s.retailer_id AND st.store_id = s.store_id
      AND before.retailer_id = st.retailer_id AND before.store_id = st.store_id
      AND (st.name, st.address, st.postal_code, st.city, st.country::text, st.lat, st.lon, st.approximate)
          IS DISTINCT FROM (s.name, s.address, s.postal_code, s.city, s.country, s.lat, s.lon, s.approximate)
    RETURNING st.num, (before.lat, before.lon) IS DISTINCT FROM (s.lat, s.lon) AS moved
), added AS (
    INSERT INTO stores (retailer_id, store_id, name, address, postal_code, city, country, lat, lon, approximate)
    SELECT retailer_id, store_id, name, address, postal_code, city, country, lat, lon, approximate FROM s
    WHERE NOT EXISTS (SELECT 1 FROM stores x WHERE x.retailer_id = s.retailer_id AND x.store_id = s.store_id)
    ON CONFLICT DO NOTHING
    RETURNING num, false AS moved
)
SELECT num, moved FROM changed UNION ALL SELECT num, moved FROM added
"""
