"""Where the Redis primary is: one fixed URL, or whatever Redis Sentinel says now.

Every connection that writes (ingest, index builds, rate limits, events, clicks) or must
see the primary's data as it changes (the index versions, the change feed, the query
pipe's fallback) comes from here. With Sentinel, redis-py's `SentinelConnectionPool`
asks the sentinels for the primary's address before each new connection and drops
connections to an address that is no longer the primary, so after a failover the
next command reconnects to the promoted replica: nothing restarts.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from cache.redis_pipe import RedisPipe


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

    @property
    def follows_sentinel(self) -> bool:
        return self.sentinel is not None

    def client(self, **kwargs: Any) -> aioredis.Redis:
        """A `redis.asyncio` client of the primary; `kwargs` are its connection options (timeouts, retry)."""
        if self.sentinel is None:
            return aioredis.Redis.from_url(self.url, **kwargs)
        return cast(aioredis.Redis, self.sentinel.master_for(self.master, **self._auth, **kwargs))

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
