from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from cache.keys import Keys
from cache.redis_packing import _HiredisPacking, ingest_redis
from cache.redis_topology import RedisTopology
from edge_api.settings import Settings
from tests.redis_servers import RedisGroup, redis_group


@pytest.fixture
def group(tmp_path: Path) -> Iterator[RedisGroup]:
    with redis_group(tmp_path / "redis") as servers:
        yield servers


async def writes_what_a_plain_client_reads_back(client: aioredis.Redis, reader: aioredis.Redis, key: str) -> None:
    # Packed by hiredis, whatever connection class the pool had (plain or Sentinel-managed).
    assert issubclass(client.connection_pool.connection_class, _HiredisPacking)
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
    assert await reader.hgetall(key) == {b"text": "Vélo".encode(), b"7": b"2.5", b"raw": b"\x00\xff"}
    [position] = await reader.geopos(key + ":geo", "paris-1")
    assert position is not None and list(position) == pytest.approx([2.3522, 48.8566], abs=1e-5)


async def test_ingest_client_writes_what_a_plain_client_reads_back(
    settings: Settings, redis: aioredis.Redis, keys: Keys
) -> None:
    await writes_what_a_plain_client_reads_back(ingest_redis(settings.redis_url), redis, keys.prefix + "packing")


async def test_the_commands_ingest_client_packs_with_hiredis_through_sentinel_too(
    group: RedisGroup, keys: Keys
) -> None:
    primary = group.primary()
    sentinel = group.sentinel(primary, "packing", quorum=1)
    # The URL names nothing that answers: the client must find the primary through the sentinel.
    topology = RedisTopology("redis://127.0.0.1:1/0", (sentinel.address,), "packing")
    reader = aioredis.Redis.from_url(primary.url)
    try:
        await writes_what_a_plain_client_reads_back(topology.client(packed=True), reader, keys.prefix + "packing")
    finally:
        await reader.aclose()
        await topology.aclose()
