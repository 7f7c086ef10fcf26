"""`nearcart ingest KIND FILE... [--retailer ID] [--format F]`: connect, load the feed, print the report."""

from __future__ import annotations

import sys
from pathlib import Path

import asyncpg
from redis.exceptions import RedisError

from cache.db import DATABASE_UNAVAILABLE
from cache.formats.base import FeedOptions
from cache.index_generation import IndexWritesLost
from cache.ingest import ingest_files
from cache.ingest_report import Reject
from cache.keys import Keys
from cache.redis_topology import primary_client
from edge_api.settings import Settings


async def run_ingest_command(
    settings: Settings, kind: str, files: list[Path], options: FeedOptions | None = None
) -> int:
    """Print each rejected row and a summary; return the exit status."""
    keys = Keys(settings.redis_prefix)

    def show(reject: Reject) -> None:
        print(reject)

    try:
        conn = await asyncpg.connect(settings.database_url, timeout=settings.database_timeout_s * 5)
    except DATABASE_UNAVAILABLE as exc:
        print(f"error: cannot reach PostgreSQL: {exc}", file=sys.stderr)
        return 1
    try:
        async with primary_client(settings, packed=True) as redis:
            report = await ingest_files(
                conn, redis, keys, kind, files, on_reject=show,
                connect=lambda: asyncpg.connect(settings.database_url, timeout=settings.database_timeout_s * 5),
                options=options,
            )
    except IndexWritesLost as exc:
        print(f"error: {kind} ingest stopped: {exc}", file=sys.stderr)
        return 1
    except (*DATABASE_UNAVAILABLE, RedisError) as exc:
        # A service failed, not the input: batches committed before it stay loaded, and a re-run loads the
        # rest. It rewrites nothing it finds already stored: had the index missed some of those, this run
        # would have ended in IndexWritesLost above, and the index healer rebuilds it.
        print(f"error: {kind} ingest stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        await conn.close()
    print(report.summary())
    return report.exit_code
