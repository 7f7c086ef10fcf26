"""`nearcart events aggregate`: a process of its own that counts the stream and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from cache.keys import Keys
from edge_api.event_buffer import append_events
from edge_api.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


async def test_aggregate_command_counts_the_stream_and_exits_on_sigterm(
    settings: Settings, redis: aioredis.Redis, keys: Keys, db: asyncpg.Connection
) -> None:
    await append_events(redis, keys, [{"kind": "open", "campaign": "spring", "gtin": "3017620422003",
                                       "region": "BE", "ts": int(time.time() * 1000)} for _ in range(120)])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NEARCART_REDIS_URL": settings.redis_url,
           "NEARCART_DATABASE_URL": settings.database_url, "NEARCART_REDIS_PREFIX": keys.prefix}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from edge_api.cli import main; main()", "events", "aggregate",
        cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(200):
            if await db.fetchval("SELECT coalesce(sum(opens), 0) FROM stats_daily") == 120:
                break
            await asyncio.sleep(0.1)
        assert await db.fetchval("SELECT sum(opens) FROM stats_daily") == 120
        assert await redis.xlen(keys.events) == 0
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 10)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()
