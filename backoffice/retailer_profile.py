"""A retailer's profile as it keeps it itself: name, logo, basket-link template, delivery countries.

Checked with the retailers feed's own rules (`validate_retailer`, `cart_template_error`),
so the back office and `nearcart ingest retailers` accept the same values. Before a
template is saved, the person sees a basket link built from it for one of the retailer's
offers (a sample product when it has none), exactly as a shopper's click would fill it.
Template changes are kept by a trigger (migration 0008), named after the person here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
import redis.asyncio as aioredis

from backoffice.records import fetch_records
from cache.directory import refresh_directory
from cache.feed_errors import RowError
from cache.index_generation import DIRECTORY, bump_generation
from cache.keys import Keys
from cache.row_rules import cart_template_error, validate_retailer
from edge_api.clicks import UnsafeRedirect, basket_url
from edge_api.tokens import ClickTarget

# Nutella 400 g: a product every French retailer sells, for a retailer with no offer yet.
SAMPLE_GTIN = "03017620422003"
SAMPLE_STORE = "STORE-1"


@dataclass(frozen=True, slots=True)
class Profile:
    retailer_id: str
    name: str
    logo_url: str
    cart_url_template: str
    delivery_countries: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TestLink:
    url: str
    gtin: str
    store_id: str
    # False: a sample product, since the retailer has no offer in stock yet.
    from_offer: bool


@dataclass(frozen=True, slots=True)
class TemplateChange:
    changed_by: str
    changed_at: datetime
    old_template: str | None
    new_template: str


async def load_profile(pool: asyncpg.Pool, retailer_id: str) -> Profile | None:
    row = await pool.fetchrow(
        "SELECT retailer_id, name, logo_url, cart_url_template, delivery_countries FROM retailers"
        " WHERE retailer_id = $1",
        retailer_id,
    )
    if row is None:
        return None
    return Profile(
        row["retailer_id"], row["name"], row["logo_url"], row["cart_url_template"], tuple(row["delivery_countries"])
    )


def checked_profile(
    retailer_id: str, name: str, logo_url: str, template: str, delivery_countries: str
) -> Profile | tuple[str, str]:
    """The profile as it will be stored, or (field, reason) of the first thing wrong with it."""
    try:
        _, rid, name, logo_url, template, countries, _ = validate_retailer(
            0, (retailer_id, name, logo_url, template, delivery_countries.replace(",", "|").replace(" ", "|"), "")
        )
    except RowError as exc:
        return exc.field, exc.reason
    return Profile(rid, name, logo_url, template, tuple(countries))


async def test_link(pool: asyncpg.Pool, retailer_id: str, template: str) -> TestLink | str:
    """The basket link a click on one of the retailer's offers would open, or why the template cannot make one."""
    problem = cart_template_error(template)
    if problem:
        return problem
    row = await pool.fetchrow(
        "SELECT gtin, store_id FROM offers WHERE retailer_id = $1 AND quantity > 0 ORDER BY updated_at DESC LIMIT 1",
        retailer_id,
    )
    gtin, store_id = (row["gtin"], row["store_id"]) if row is not None else (SAMPLE_GTIN, SAMPLE_STORE)
    try:
        url = basket_url(template, ClickTarget(retailer_id, store_id, gtin, "", 0), {})
    except UnsafeRedirect as exc:
        return str(exc)
    return TestLink(url, gtin, store_id, row is not None)


async def save_profile(
    pool: asyncpg.Pool, redis: aioredis.Redis, keys: Keys, profile: Profile, actor: str
) -> bool:
    """Store the profile and publish it to the edge's directory; False when nothing changed."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            # Read by the template-history trigger: who made this change.
            await conn.execute("SELECT set_config('nearcart.actor', $1, true)", actor)
            values = (profile.retailer_id, profile.name, profile.logo_url, profile.cart_url_template,
                      list(profile.delivery_countries))
            # Update, else insert: an unchanged profile burns no identity number (`retailers.num`).
            changed = await conn.fetchval(_UPDATE, *values) or await conn.fetchval(_INSERT, *values)
            if changed:  # the directory's write generation moves with it (cache/index_generation.py)
                await bump_generation(conn, keys, DIRECTORY)
        if changed:
            await refresh_directory(conn, redis, keys)
    return bool(changed)


async def template_history(pool: asyncpg.Pool, retailer_id: str, limit: int = 100) -> list[TemplateChange]:
    return await fetch_records(
        pool, TemplateChange,
        "SELECT changed_by, changed_at, old_template, new_template FROM retailer_template_changes"
        " WHERE retailer_id = $1 ORDER BY id DESC LIMIT $2",
        retailer_id, limit,
    )


# Delivery zones are a feed's business (GeoJSON): the profile leaves them as they are.
_UPDATE = """
UPDATE retailers SET name = $2, logo_url = $3, cart_url_template = $4, delivery_countries = $5, updated_at = now()
WHERE retailer_id = $1 AND (name, logo_url, cart_url_template, delivery_countries) IS DISTINCT FROM ($2, $3, $4, $5)
RETURNING true
"""
_INSERT = """
INSERT INTO retailers (retailer_id, name, logo_url, cart_url_template, delivery_countries)
SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM retailers WHERE retailer_id = $1)
ON CONFLICT DO NOTHING
RETURNING true
"""
