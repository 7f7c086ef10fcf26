"""Where the Redis primary is: one fixed URL, or whatever Redis Sentinel says now.

Every connection to the primary of every process comes from here: the API's (rate limits,
events, clicks, the index versions, the change feed, the query pipe's fallback, the index
healer, the back office's sessions), the events aggregator's, and each command's (ingest,
feed pulls and uploads, index builds, quality checks, the demo). With Sentinel, redis-py's
`SentinelConnectionPool` asks the sentinels for the primary's address before each new
connection and drops connections to an address that is no longer the primary, so after a
failover the next command reconnects to the promoted replica: nothing restarts. Without
Sentinel a client is exactly `Redis.from_url(NEARCART_REDIS_URL)`.

This module takes plain values (or any object with the settings' attribute names), never
`edge_api.settings`: cache/ sits below the app.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol, cast
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from cache.redis_packing import pack_with_hiredis
from cache.redis_pipe import RedisPipe


class PrimarySettings(Protocol):
    """The settings that say where the primary is (`edge_api.settings.Settings` has them)."""

    @property
    def redis_url(self) -> str: ...

    @property
    def redis_sentinels(self) -> tuple[str, ...]: ...

    @property
    def redis_sentinel_master(self) -> str: ...

    @property
    def redis_timeout_s(self) -> float: ...


def parse_sentinels(addresses: tuple[str, ...]) -> list[tuple[str, int]]:
    """`host:port` strings as (host, port) pairs (settings checked their shape)."""
    pairs = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        pairs.append((host.strip("[]"), int(port)))
    return pairs


class RedisTopology:
    """Clients and pipes to the primary, following Sentinel when `sentinels` are given."""

    def __init__(self, url: str, sentinels: tuple[str, ...] = (), master: str = "", timeout_s: float = 0.05) -> None:
        self.url = url
        self.master = master
        self.timeout_s = timeout_s
        parts = urlsplit(url)
        path = parts.path.lstrip("/")
        # What the URL says besides where: the database and the password apply to whichever server is primary.
        self._auth: dict[str, Any] = {
            "db": int(path) if path.isdigit() else 0,
            "password": unquote(parts.password) if parts.password else None,
            "username": unquote(parts.username) if parts.username else None,
        }
        self.sentinel: Sentinel | None = None
        if sentinels:
            # The sentinels themselves get a longer timeout than requests: asking them is rare, and a
            # failover is exactly when they are busy.
            self.sentinel = Sentinel(  # type: ignore[no-untyped-call]
                parse_sentinels(sentinels), sentinel_kwargs={"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
            )

    @classmethod
    def from_settings(cls, settings: PrimarySettings) -> RedisTopology:
        """`NEARCART_REDIS_URL`, or the primary found and followed through `NEARCART_REDIS_SENTINELS`."""
        return cls(settings.redis_url, settings.redis_sentinels, settings.redis_sentinel_master,
                   settings.redis_timeout_s)

    @property
    def follows_sentinel(self) -> bool:
        return self.sentinel is not None

    def client(self, *, packed: bool = False, **kwargs: Any) -> aioredis.Redis:
        """A `redis.asyncio` client of the primary; `kwargs` are its connection options (timeouts, retry).

        `packed`: commands packed by hiredis in C (cache/redis_packing.py), for ingest's millions of arguments.
        """
        if self.sentinel is None:
            client = aioredis.Redis.from_url(self.url, **kwargs)
        else:
            client = cast(aioredis.Redis, self.sentinel.master_for(self.master, **self._auth, **kwargs))
        return pack_with_hiredis(client) if packed else client

    def feed_client(self) -> aioredis.Redis:
        """A client for a subscription: no short request timeout (it mostly waits), a health check instead."""
        return self.client(socket_connect_timeout=1.0, health_check_interval=5)

    async def primary_address(self) -> tuple[str, int]:
        """(host, port) of the primary now: asked of Sentinel, or the URL's."""
        if self.sentinel is None:
            parts = urlsplit(self.url)
            return parts.hostname or "127.0.0.1", parts.port or 6379
        host, port = await self.sentinel.discover_master(self.master)
        return str(host), int(port)

    def pipe(self, timeout_s: float | None = None) -> RedisPipe:
        """The query pipe to the primary; with Sentinel it looks the primary up at each (re)connection."""
        locate = self.primary_address if self.sentinel is not None else None
        return RedisPipe(self.url, timeout_s=self.timeout_s if timeout_s is None else timeout_s, locate=locate)

    async def aclose(self) -> None:
        if self.sentinel is not None:
            await self.sentinel.aclose()


@contextlib.asynccontextmanager
async def primary_client(settings: PrimarySettings, *, packed: bool = False,
                         **kwargs: Any) -> AsyncIterator[aioredis.Redis]:
    """A client of the primary for one command or one process's life; closed with its sentinel connections."""
    topology = RedisTopology.from_settings(settings)
    client = topology.client(packed=packed, **kwargs)
    try:
        yield client
    finally:
        await client.aclose()
        await topology.aclose()
