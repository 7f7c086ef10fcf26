"""`nearcart index build`: rebuild the Redis index from PostgreSQL, swap it in, say so."""

from __future__ import annotations

import time

import asyncpg

from cache.index import build_index
from cache.keys import Keys
from cache.redis_topology import primary_client
from edge_api.settings import Settings


async def run_build_command(settings: Settings) -> None:
    keys = Keys(settings.redis_prefix)
    conn = await asyncpg.connect(settings.database_url)
    try:
        # The primary of now: through Sentinel when configured (a failover never leaves the build on a dead server).
        async with primary_client(settings) as redis:
            started = time.perf_counter()
            version = await build_index(conn, redis, keys, grace_s=settings.index_grace_s)
        offers = await conn.fetchval("SELECT count(*) FROM offers WHERE quantity > 0")
        print(f"index version {version} live: {offers} in-stock offers in {time.perf_counter() - started:.1f} s")
    finally:
        await conn.close()
