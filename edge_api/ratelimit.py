"""A fixed-window rate limit kept in Redis, so every worker and every edge server shares one count.

One script call per request: INCR the window's counter, give it its expiry the
first time, and return the count with the time left. When Redis cannot answer in
time the request is let through: a lost beacon costs less than a refused shopper.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from cache.keys import Keys

# KEYS[1] counter; ARGV[1] window in ms. Returns {count, ms left in the window}.
_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); left = tonumber(ARGV[1]) end
return {count, left}
"""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        """IETF draft `RateLimit-*` fields, plus `Retry-After` when refused."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_s))
        return headers


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, keys: Keys, limit: int, window_s: int = 60) -> None:
        self.redis = redis
        self.keys = keys
        self.limit = limit
        self.window_s = window_s
        self._script = redis.register_script(_SCRIPT)

    async def hit(self, bucket: str) -> Decision:
        """Count one request of `bucket` (e.g. a truncated IP) in the current window."""
        window = int(time.time() // self.window_s)
        key = self.keys.rate_limit(f"{bucket}:{window}")
        try:
            count, left_ms = await self._script(keys=[key], args=[self.window_s * 1000])
        except (RedisError, OSError):
            return Decision(True, self.limit, self.limit, self.window_s)
        count = int(count)
        reset_s = max(1, math.ceil(int(left_ms) / 1000))
        return Decision(count <= self.limit, self.limit, max(0, self.limit - count), reset_s)
