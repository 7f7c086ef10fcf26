"""One data-quality check over every retailer: catalog figures, a basket-link sample, unconfirmed offers.

Run by `nearcart quality check` (a CronJob) or on demand; what it stores is what `/metrics` and
the back office's `/admin/quality` show.
"""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis

from cache.keys import Keys
from cache.quality import LinkFailure, RetailerQuality, catalog_figures, read_quality, store_figures
from cache.unconfirmed import apply_unconfirmed
from edge_api.basket_links import check_links, sample_links
from edge_api.settings import Settings

# Failing links kept per retailer to show it (the count has them all).
SHOWN_FAILURES = 5


async def check_quality(
    conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, settings: Settings
) -> list[RetailerQuality]:
    """Compute, store and return every retailer's figures (feed ages as of now)."""
    figures = await catalog_figures(conn, settings.unconfirmed_after_s)
    samples: dict[str, list[str]] = {}
    for retailer_id, template in await conn.fetch("SELECT retailer_id, cart_url_template FROM retailers"):
        samples[retailer_id] = await sample_links(
            conn, retailer_id, template, settings.links_per_retailer, settings.allow_http_loopback
        )
    outcome = await check_links(
        [url for urls in samples.values() for url in urls], settings.link_timeout_s, settings.allow_http_loopback
    )
    for retailer_id, urls in samples.items():
        failures = [LinkFailure(url, reason) for url in urls if (reason := outcome[url]) is not None]
        quality = figures.get(retailer_id)
        if quality is None:  # joined after the figures were read: its turn comes at the next check
            continue
        quality.links_checked, quality.links_failing = len(urls), len(failures)
        quality.link_failures = failures[:SHOWN_FAILURES]
    await store_figures(conn, list(figures.values()))
    await apply_unconfirmed(conn, redis, keys, settings.unconfirmed_after_s)
    return await read_quality(conn)
