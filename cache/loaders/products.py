"""Loads a retailer's item id -> GTIN map (table retailer_items), and reads it back for its inventories.

A Google local inventory names items by the retailer's own id; its product feed (kind
`products`) says which GTIN each id is. Nothing in the index depends on the map itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from cache.feed_errors import FeedError, quote
from cache.formats.base import FeedOptions
from cache.keys import Keys
from cache.loaders.base import Loader, create_staging
from cache.row_rules import item_validator


class ProductLoader(Loader):
    kind = "products"

    @classmethod
    async def open(cls, conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, batch_rows: int) -> Loader:
        loader = cls(conn, redis, keys, batch_rows)
        loader.validate = item_validator({row[0] for row in await conn.fetch("SELECT retailer_id FROM retailers")})
        await create_staging(conn, "nearcart_items_in", "seq bigint, retailer_id text, item_id text, gtin char(14)")
        return loader

    async def flush(self, records: list[tuple[Any, ...]]) -> None:
        async with self.conn.transaction():
            await self.conn.copy_records_to_table("nearcart_items_in", records=records)
            self.loaded += await self.conn.fetchval(_ITEMS_UPSERT)


# Last row of an item wins; an unchanged item writes nothing, so the same product feed again changes nothing.
_ITEMS_UPSERT = """
WITH s AS (
    SELECT DISTINCT ON (retailer_id, item_id) * FROM nearcart_items_in ORDER BY retailer_id, item_id, seq DESC
), written AS (
    INSERT INTO retailer_items AS i (retailer_id, item_id, gtin) SELECT retailer_id, item_id, gtin FROM s
    ON CONFLICT (retailer_id, item_id) DO UPDATE SET gtin = excluded.gtin WHERE i.gtin <> excluded.gtin
    RETURNING 1
)
SELECT count(*) FROM written
"""


async def prepare_options(conn: asyncpg.Connection, kind: str, options: FeedOptions) -> FeedOptions:
    """Options ready for reading: --retailer checked against the catalog, its item map loaded for offers."""
    retailer = options.retailer
    if not retailer or kind == "retailers":
        return options
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM retailers WHERE retailer_id = $1)", retailer):
        raise FeedError(f"unknown retailer {quote(retailer)} (--retailer): load it with `nearcart ingest retailers`")
    if kind != "offers":
        return options
    rows = await conn.fetch("SELECT item_id, gtin FROM retailer_items WHERE retailer_id = $1", retailer)
    return dataclasses.replace(options, items={row[0]: row[1] for row in rows})
