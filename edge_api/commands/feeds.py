"""`nearcart feeds pull` / `nearcart feeds set`: the feeds nearcart fetches from retailers itself."""

from __future__ import annotations

import sys

import asyncpg

from cache.db import DATABASE_UNAVAILABLE
from cache.feed_pull import PullLimits, PullResult, pull_due, set_feed
from cache.keys import Keys
from cache.redis_topology import primary_client
from edge_api.settings import Settings


def _connect(settings: Settings) -> asyncpg.Connection:
    return asyncpg.connect(settings.database_url, timeout=settings.database_timeout_s * 5)


async def run_pull_command(settings: Settings) -> int:
    """Exit status: 0 every due feed ingested whole or unchanged, 3 some rows rejected, 1 a feed failed."""
    limits = PullLimits(
        timeout_s=settings.feed_timeout_s, max_bytes=settings.feed_max_bytes,
        host_delay_s=settings.feed_host_delay_s, allow_http_loopback=settings.allow_http_loopback,
    )
    try:
        conn = await _connect(settings)
    except DATABASE_UNAVAILABLE as exc:
        print(f"error: cannot reach PostgreSQL: {exc}", file=sys.stderr)
        return 1

    def show(result: PullResult) -> None:
        print(result)

    try:
        async with primary_client(settings, packed=True) as redis:
            results = await pull_due(
                conn, redis, Keys(settings.redis_prefix), limits, connect=lambda: _connect(settings), on_result=show
            )
    except DATABASE_UNAVAILABLE as exc:
        print(f"error: feeds pull stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        await conn.close()
    print(f"{len(results)} feed(s) due")
    statuses = {result.status for result in results}
    return 1 if "failed" in statuses else 3 if "rejected rows" in statuses else 0


async def run_set_command(settings: Settings, retailer_id: str, kind: str, url: str, interval_s: int) -> int:
    try:
        conn = await _connect(settings)
    except DATABASE_UNAVAILABLE as exc:
        print(f"error: cannot reach PostgreSQL: {exc}", file=sys.stderr)
        return 1
    try:
        problem = await set_feed(conn, retailer_id, kind, url, interval_s, settings.allow_http_loopback)
    finally:
        await conn.close()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    print(f"{retailer_id} {kind}: pulled from {url} every {interval_s} s")
    return 0
