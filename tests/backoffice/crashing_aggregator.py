"""An aggregator process that kills itself with SIGKILL at one checkpoint (for the exactly-once tests).

    python -m tests.backoffice.crashing_aggregator REDIS_URL DATABASE_URL PREFIX POINT
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import redis.asyncio as aioredis

from backoffice.aggregator import aggregate_once
from cache import db as catalog_db
from cache.keys import Keys


async def main(redis_url: str, database_url: str, prefix: str, point: str) -> None:
    async def die_at(reached: str) -> None:
        if reached == point:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no rollback sent, no XACK: a real crash

    redis = aioredis.Redis.from_url(redis_url)
    pool = await catalog_db.create_pool(database_url)
    await aggregate_once(redis, Keys(prefix), pool, consumer="doomed", batch=100, checkpoint=die_at)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
