"""What the back office opens once per worker, beside the edge's state: its own Redis client, sessions, throttle.

Its own client because the edge's gives up after `NEARCART_REDIS_TIMEOUT_S` (50 ms:
an offers answer must not wait), which a busy worker can pass while a person logs
in; a person can wait a second. It comes from the worker's `RedisTopology`, so sessions,
login throttling and CSRF follow the primary through a Sentinel failover.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from starlette.requests import HTTPConnection

from backoffice.keys import OfficeKeys
from backoffice.sessions import Sessions
from backoffice.throttle import LoginThrottle
from cache.redis_topology import RedisTopology
from edge_api.settings import Settings

REDIS_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class OfficeState:
    redis: aioredis.Redis
    sessions: Sessions
    throttle: LoginThrottle


@contextlib.asynccontextmanager
async def office_lifespan(settings: Settings, topology: RedisTopology) -> AsyncIterator[dict[str, Any]]:
    """The back office's part of the app's lifespan state (`request.state.office`)."""
    redis = topology.client(socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)
    keys = OfficeKeys(settings.redis_prefix)
    try:
        yield {"office": OfficeState(redis, Sessions(redis, keys, settings.session_idle_s), LoginThrottle(redis, keys))}
    finally:
        await redis.aclose()


def office_state(conn: HTTPConnection) -> OfficeState:
    return cast(OfficeState, conn.state.office)
