from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from cache.keys import Keys
from cache.redis_packing import ingest_redis
from edge_api.settings import Settings


async def test_ingest_client_writes_what_a_plain_client_reads_back(
    settings: Settings, redis: aioredis.Redis, keys: Keys
) -> None:
    key = keys.prefix + "packing"
    client = ingest_redis(settings.redis_url)
    try:
        pipe = client.pipeline(transaction=False)
        pipe.hset(key, mapping={"text": "Vélo", 7: 2.5, b"raw": b"\x00\xff"})
        pipe.geoadd(key + ":geo", (2.3522, 48.8566, "paris-1"))
        await pipe.execute()
        # A command name of two words ("MEMORY USAGE") goes through redis-py's own packing.
        used = await client.memory_usage(key)
        assert used is not None and used > 0
    finally:
        await client.aclose()
    assert await redis.hgetall(key) == {b"text": "Vélo".encode(), b"7": b"2.5", b"raw": b"\x00\xff"}
    [position] = await redis.geopos(key + ":geo", "paris-1")
    assert position is not None and list(position) == pytest.approx([2.3522, 48.8566], abs=1e-5)
