"""Loads retailers: one upsert per batch, then the directory the edge reads them from is refreshed."""

from __future__ import annotations

from typing import Any

import asyncpg
import redis.asyncio as aioredis

from cache.directory import refresh_directory
from cache.index_generation import DIRECTORY, bump_generation
from cache.keys import Keys
from cache.loaders.base import Loader, create_staging
from cache.row_rules import validate_retailer


class RetailerLoader(Loader):
    kind = "retailers"

    @classmethod
    async def open(cls, conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, batch_rows: int) -> Loader:
        loader = cls(conn, redis, keys, batch_rows)
        loader.validate = validate_retailer
        await create_staging(
            conn, "nearcart_retailers_in", "seq bigint, retailer_id text, name text, logo_url text,"
            " cart_url_template text, delivery_countries text[], delivery_zones text",
        )
        return loader

    async def flush(self, records: list[tuple[Any, ...]]) -> None:
        async with self.conn.transaction():
            await self.conn.copy_records_to_table("nearcart_retailers_in", records=records)
            changed = await self.conn.fetchval(_RETAILER_UPSERT)
            if changed:
                await bump_generation(self.conn, self.keys, DIRECTORY)
        self.loaded += changed
        self.unindexed += changed

    async def finish(self) -> None:
        if self.loaded:
            await refresh_directory(self.conn, self.redis, self.keys)
            self.unindexed = 0


# Updates and inserts are separate so an unchanged retailer does not burn an identity number.
_RETAILER_UPSERT = """
WITH s AS (
    SELECT DISTINCT ON (retailer_id) * FROM nearcart_retailers_in ORDER BY retailer_id, seq DESC
), changed AS (
    UPDATE retailers r SET name = s.name, logo_url = s.logo_url, cart_url_template = s.cart_url_template,
        delivery_countries = s.delivery_countries, delivery_zones = s.delivery_zones::jsonb, updated_at = now()
    FROM s
    WHERE r.retailer_id = s.retailer_id
      AND (r.name, r.logo_url, r.cart_url_template, r.delivery_countries, r.delivery_zones)
          IS DISTINCT FROM (s.name, s.logo_url, s.cart_url_template, s.delivery_countries, s.delivery_zones::jsonb)
    RETURNING 1
), added AS (
    INSERT INTO retailers (retailer_id, name, logo_url, cart_url_template, delivery_countries, delivery_zones)
    SELECT retailer_id, name, logo_url, cart_url_template, delivery_countries, delivery_zones::jsonb FROM s
    WHERE NOT EXISTS (SELECT 1 FROM retailers r WHERE r.retailer_id = s.retailer_id)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM changed) + (SELECT count(*) FROM added)
"""
