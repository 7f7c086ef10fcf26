"""Failed logins, counted in Redis per account and per network (/24, IPv6 /48), shared by every worker.

Past `ACCOUNT_LIMIT` failures for one email, or `NETWORK_LIMIT` from one network,
within `WINDOW_S` of the first, further attempts are refused without even checking
the password, until the window ends. Unknown emails are counted like known ones, so
the refusal says nothing about who has an account. A success clears its account's
count (not its network's: one good password must not reset a guessing network).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from backoffice.keys import OfficeKeys

ACCOUNT_LIMIT = 5
NETWORK_LIMIT = 20
WINDOW_S = 15 * 60


@dataclass(frozen=True, slots=True)
class LoginThrottle:
    redis: aioredis.Redis
    keys: OfficeKeys

    async def wait_s(self, email: str, network: str) -> int:
        """Seconds until this email may be tried again from this network; 0 when it may now."""
        account, net = self.keys.account_failures(email), self.keys.network_failures(network or "unknown")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(account)
            pipe.ttl(account)
            pipe.get(net)
            pipe.ttl(net)
            account_count, account_ttl, net_count, net_ttl = await pipe.execute()
        waits = [0]
        if int(account_count or 0) >= ACCOUNT_LIMIT:
            waits.append(max(1, int(account_ttl)))
        if int(net_count or 0) >= NETWORK_LIMIT:
            waits.append(max(1, int(net_ttl)))
        return max(waits)

    async def failed(self, email: str, network: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in (self.keys.account_failures(email), self.keys.network_failures(network or "unknown")):
                # SET NX EX starts the window at the first failure; INCR keeps the expiry (Redis 6.2 has no EXPIRE NX).
                pipe.set(key, 0, ex=WINDOW_S, nx=True)
                pipe.incr(key)
            await pipe.execute()

    async def succeeded(self, email: str) -> None:
        await self.redis.unlink(self.keys.account_failures(email))
