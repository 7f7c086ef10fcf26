"""`nearcart quality check`: compute every retailer's data-quality figures, store them, print the table."""

from __future__ import annotations

import sys

import asyncpg

from cache.db import DATABASE_UNAVAILABLE
from cache.keys import Keys
from cache.quality import RetailerQuality
from cache.redis_topology import primary_client
from edge_api.quality_check import check_quality
from edge_api.settings import Settings

HEADER = (
    "retailer", "offers", "unconfirmed", "outliers", "stores", "approx.", "links failing", "feeds (age h, rejected)",
)


def quality_table(figures: list[RetailerQuality]) -> str:
    """A plain-text table, worst first (most kinds of fault), as the back office orders it."""
    rows = [HEADER]
    for q in sorted(figures, key=lambda q: (-q.problems, q.retailer_id)):
        feeds = " ".join(f"{f.kind}:{f.age_s / 3600:.1f}h,{f.rejected_ratio:.0%}" for f in q.feeds) or "-"
        rows.append((
            q.retailer_id, str(q.offers), str(q.offers_unconfirmed), str(q.price_outliers), str(q.stores),
            str(q.stores_approximate), f"{q.links_failing}/{q.links_checked}", feeds,
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


async def run_quality_command(settings: Settings) -> int:
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=settings.database_timeout_s * 5)
    except DATABASE_UNAVAILABLE as exc:
        print(f"error: cannot reach PostgreSQL: {exc}", file=sys.stderr)
        return 1
    try:
        async with primary_client(settings) as redis:
            figures = await check_quality(conn, redis, Keys(settings.redis_prefix), settings)
    finally:
        await conn.close()
    print(quality_table(figures))
    return 0
