"""Names as brands know them, for the keys statistics keep (GTINs, retailer ids, modes, region codes).

A product is named by the label its campaign gives it (what the brand wrote), else by the
catalog's product name; a retailer by its feed's name. Only campaigns in the person's scope
lend their labels: another brand's wording never shows.
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from backoffice.i18n import Translate
from cache.gtin import GtinError, normalize_gtin


def mode_names(_: Translate) -> dict[str, str]:
    return {"in_store": _("In store"), "click_collect": _("Click & collect"), "delivery": _("Delivery")}


async def campaign_products(pool: asyncpg.Pool, campaigns: tuple[str, ...] | None) -> dict[str, str]:
    """GTIN (14 digits) -> label, from the products of these campaigns (None: every campaign), by label."""
    rows = await pool.fetch(
        "SELECT p->>'gtin' AS gtin, p->>'label' AS label FROM campaigns c,"
        " jsonb_array_elements(c.body->'products') AS p WHERE $1::text[] IS NULL OR c.id = ANY($1) ORDER BY c.id",
        None if campaigns is None else list(campaigns),
    )
    labels: dict[str, str] = {}
    for row in rows:
        try:
            labels.setdefault(normalize_gtin(row["gtin"] or ""), row["label"] or "")
        except GtinError:
            continue  # campaigns are validated on save; one stored before that is only not named
    return dict(sorted(labels.items(), key=lambda item: (item[1].casefold(), item[0])))


async def catalog_names(pool: asyncpg.Pool, gtins: Iterable[str]) -> dict[str, str]:
    rows = await pool.fetch("SELECT gtin, name FROM products WHERE gtin = ANY($1) AND name <> ''", list(gtins))
    return {row["gtin"]: row["name"] for row in rows}


async def retailer_names(pool: asyncpg.Pool) -> dict[str, str]:
    """Retailer id -> name, by name (a few hundred at most: they sign up one by one)."""
    rows = await pool.fetch("SELECT retailer_id, name FROM retailers ORDER BY lower(name), retailer_id LIMIT 5000")
    return {row["retailer_id"]: row["name"] for row in rows}
