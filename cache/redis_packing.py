"""A Redis client for ingest whose commands are packed by hiredis in C.

redis.asyncio packs every argument in Python; a million-offer feed sends millions of
arguments, and packing them cost a third of the ingest's Python time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.connection import HiredisRespSerializer


def ingest_redis(url: str) -> aioredis.Redis:
    """A client like `Redis.from_url(url)`, packing commands with hiredis (benchmarks; the commands
    get theirs from cache/redis_topology.py, which may follow Sentinel)."""
    return pack_with_hiredis(aioredis.Redis.from_url(url))


def pack_with_hiredis(client: aioredis.Redis) -> aioredis.Redis:
    """`client`, its new connections packing commands with hiredis (a plain or a Sentinel-managed pool)."""
    pool = client.connection_pool
    base = pool.connection_class
    pool.connection_class = type(f"HiredisPacked{base.__name__}", (_HiredisPacking, base), {})
    return client


class _HiredisPacking:
    """Mixin over a redis.asyncio Connection class (TCP, TLS or Unix socket alike)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return [_pack(args)]

    def pack_commands(self, commands: Iterable[Iterable[Any]]) -> list[bytes]:
        return [b"".join(_pack(tuple(command)) for command in commands)]


_fallback = HiredisRespSerializer()


def _pack(args: tuple[Any, ...]) -> bytes:
    head = args[0]
    if isinstance(head, str) and " " not in head:
        try:
            packed: bytes = hiredis.pack_command(args)
            return packed
        except TypeError:
            pass
    # "CLIENT SETINFO" style names, or argument types only redis-py knows how to send.
    return b"".join(_fallback.pack(*args))
