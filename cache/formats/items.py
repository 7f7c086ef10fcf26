"""A retailer's item id -> GTIN map (table retailer_items): checking its rows, storing them, reading it back."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Container
from typing import Any

import asyncpg

from cache.feeds import FeedError, RowError, quote
from cache.formats import FeedOptions
from cache.gtin import GtinError, normalize_gtin

# Google caps item ids at 50 characters; a little room for other tools.
MAX_ITEM_ID = 64

ITEMS_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS nearcart_items_in (seq bigint, retailer_id text, item_id text, gtin char(14))"
    " ON COMMIT DELETE ROWS"
)
# Last row of an item wins; an unchanged item writes nothing, so the same product feed again changes nothing.
ITEMS_UPSERT = """
WITH s AS (
    SELECT DISTINCT ON (retailer_id, item_id) * FROM nearcart_items_in ORDER BY retailer_id, item_id, seq DESC
), written AS (
    INSERT INTO retailer_items AS i (retailer_id, item_id, gtin) SELECT retailer_id, item_id, gtin FROM s
    ON CONFLICT (retailer_id, item_id) DO UPDATE SET gtin = excluded.gtin WHERE i.gtin <> excluded.gtin
    RETURNING 1
)
SELECT count(*) FROM written
"""


def item_validator(retailers: Container[str]) -> Callable[[int, tuple[Any, ...]], tuple[Any, ...]]:
    """Validates (retailer_id, item_id, gtin) rows against the retailers in the catalog."""

    def validate(line: int, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """(line, retailer_id, item_id, gtin14)."""
        retailer_id, item_id, gtin = values
        retailer_id = retailer_id.strip()
        if retailer_id not in retailers:
            raise RowError("retailer_id", f"unknown retailer {quote(retailer_id)}" if retailer_id else "missing")
        item_id = item_id.strip()
        if not item_id:
            raise RowError("id", "missing")
        if len(item_id) > MAX_ITEM_ID or not item_id.isprintable():
            raise RowError("id", f"{quote(item_id)} is not an item id (printable, at most {MAX_ITEM_ID} characters)")
        try:
            gtin14 = normalize_gtin(gtin)
        except GtinError as exc:
            raise RowError("gtin", str(exc) if gtin.strip() else "missing") from None
        return line, retailer_id, item_id, gtin14

    return validate


async def prepare(conn: asyncpg.Connection, kind: str, options: FeedOptions) -> FeedOptions:
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
