"""The index as the offers route reads it: `IndexReader.query_rows` through a `RedisPipe`, members resolved.

Tests of what the index holds go through this, so they exercise the one query path production runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import NamedTuple

import redis.asyncio as aioredis

from cache.index_reader import DeliveryHit, IndexReader, Member
from cache.keys import Keys
from cache.redis_pipe import RedisPipe


class StoreFound(NamedTuple):
    offer: Member
    distance_km: float


class Found(NamedTuple):
    stores: list[StoreFound]
    delivery: list[DeliveryHit]


def _url_of(redis: aioredis.Redis) -> str:
    """The server the test's client talks to, as a URL the pipe takes."""
    kwargs = redis.connection_pool.connection_kwargs
    password = kwargs.get("password")
    auth = f":{password}@" if password else ""
    return f"redis://{auth}{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


@contextlib.asynccontextmanager
async def index_reader(redis: aioredis.Redis, keys: Keys, refresh_s: float = 0.2) -> AsyncIterator[IndexReader]:
    """A reader of the live index (read once; `start()` it to follow rebuilds) and its pipe, closed afterwards."""
    pipe = RedisPipe(_url_of(redis), timeout_s=5.0)
    reader = IndexReader(redis, keys, pipe, refresh_s=refresh_s)
    try:
        await reader.refresh()
        yield reader
    finally:
        await reader.stop()
        pipe.close()


async def offers_near(reader: IndexReader, gtin: str, lat: float, lon: float, radius_km: float,
                      count: int) -> Found:
    """Store offers within the radius, nearest first, with what each member stands for; delivery offers."""
    rows = await reader.query_rows(gtin, lat, lon, radius_km, count)
    stores = [StoreFound(offer, float(distance)) for member, distance in rows.rows
              if (offer := reader.resolve(member)) is not None]
    return Found(stores, rows.delivery)
