"""Index reads spread over Redis read replicas, each serving only what it provably holds.

Replication is asynchronous: a replica may not have the live index version yet, or a change
the primary just announced. So a background probe (every `probe_s`) reads the primary's
replication offset, then each replica's (`INFO replication`), its live version key and a
PING. A replica whose offset has reached an offset the primary had at time T holds every
write the primary had made by T: it is "fresh at T". A query about a GTIN may read a replica
only if the replica is fresh at or after the moment this worker adopted its index version,
(re)joined the change feed, or heard of that GTIN's last change (`IndexReader.settled_at`,
`changed_at`); otherwise it reads the primary. Answers are therefore the ones the primary
would give, only read elsewhere.

A replica that fails a read, stops answering the probe, holds another version, or falls more
than `max_lag_s` behind a reachable primary leaves the rotation at once; the read is retried,
once, on another replica or the primary within what is left of the request's Redis budget.
The probe takes it back when it is healthy again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from typing import Any, Protocol

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

from cache.keys import Keys
from cache.redis_pipe import RedisPipe
from cache.tasks import stop_task

log = logging.getLogger("nearcart.replicas")

READS = Counter("nearcart_index_reads_total", "Index reads by where they were answered", ["server"])
READS_REPLICA, READS_PRIMARY, READS_RETRIED = READS.labels("replica"), READS.labels("primary"), READS.labels("retry")
IN_ROTATION = Gauge("nearcart_index_replicas_in_rotation", "Read replicas this worker reads the index from",
                    multiprocess_mode="livesum")
# Checkpoints kept per replica while it catches up: beyond this it is too far behind to serve anyway.
MAX_CHECKPOINTS = 64


class IndexView(Protocol):
    """What the probe needs of the worker's index reader."""

    version: int | None
    changes_live: bool


def info_fields(raw: bytes | str | dict[str, Any]) -> dict[str, str]:
    """`INFO` as a dict of its `name:value` lines (the pipe gives text, redis-py a parsed dict)."""
    if isinstance(raw, dict):
        return {str(name): str(value) for name, value in raw.items()}
    text = raw.decode() if isinstance(raw, bytes) else raw
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


class Replica:
    __slots__ = ("url", "pipe", "in_rotation", "fresh_at", "checkpoints", "why")

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.pipe = RedisPipe(url, timeout_s=timeout_s)
        self.in_rotation = False
        # Monotonic time at which the primary's writes are all known to be here (0: never yet).
        self.fresh_at = 0.0
        # (monotonic time, primary offset then) that this replica has not reached yet.
        self.checkpoints: collections.deque[tuple[float, int]] = collections.deque(maxlen=MAX_CHECKPOINTS)
        self.why = "not probed yet"

    def reached(self, offset: int) -> None:
        """The replica has processed the replication stream up to `offset`: it is fresh at every checkpoint below."""
        reached = [at for at, primary_offset in self.checkpoints if primary_offset <= offset]
        if reached:
            self.fresh_at = max(self.fresh_at, max(reached))
            # Kept: checkpoints it has not reached (after a failover, an old primary's offsets may never be).
            kept = [(at, off) for at, off in self.checkpoints if at > self.fresh_at]
            self.checkpoints.clear()
            self.checkpoints.extend(kept)


class ReplicaSet:
    """The read replicas of one worker, in rotation or not, and the reads that pick among them."""

    def __init__(self, urls: tuple[str, ...], primary: aioredis.Redis, keys: Keys, timeout_s: float,
                 probe_s: float = 0.2, max_lag_s: float = 1.0) -> None:
        self.primary = primary
        self.keys = keys
        # A read on a replica gets half of the request's Redis budget: a hung one leaves time for the retry.
        self.timeout_s = timeout_s
        self.replicas = [Replica(url, timeout_s / 2) for url in urls]
        self.probe_s = probe_s
        self.max_lag_s = max_lag_s
        self.primary_down = False
        self._next = 0
        self._view: IndexView | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, view: IndexView) -> None:
        self._view = view
        await self.probe()
        self._task = asyncio.create_task(self._probe_forever(), name="nearcart-replica-probe")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        for replica in self.replicas:
            replica.pipe.close()
        IN_ROTATION.dec(sum(replica.in_rotation for replica in self.replicas))

    async def execute(self, primary_pipe: RedisPipe, need: float, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
        """Run the index `commands` on a replica fresh at `need` (monotonic time), else on the primary.

        One retry, on another replica or the primary, within the request's Redis budget.
        """
        started = time.monotonic()
        first = self._pick(need, started, None)
        if first is None:
            READS_PRIMARY.inc()
            return await primary_pipe.execute(*commands)
        try:
            replies = await first.pipe.execute(*commands)
            READS_REPLICA.inc()
            return replies
        except (RedisError, OSError) as exc:
            self._drop(first, f"read failed: {type(exc).__name__}")
        READS_RETRIED.inc()
        # What is left of the budget, but at least the half a replica read gets: time this worker itself was
        # late (a busy loop) is not Redis' lateness, as in RedisPipe's own deadlines.
        left = max(self.timeout_s - (time.monotonic() - started), self.timeout_s / 2)
        second = self._pick(need, time.monotonic(), first)
        pipe = second.pipe if second is not None else primary_pipe
        return await pipe.execute(*commands, timeout_s=left)

    def _pick(self, need: float, now: float, skip: Replica | None) -> Replica | None:
        """The next replica in rotation that holds everything the read needs (round robin), or None."""
        replicas = self.replicas
        count = len(replicas)
        view = self._view
        # While the change feed is not followed a change could go unannounced: only a replica fresh
        # within `max_lag_s` is trusted then, unless the primary is unreachable (nothing can change).
        recent = 0.0 if view is None or view.changes_live or self.primary_down else now - self.max_lag_s
        floor = max(need, recent)
        for step in range(count):
            replica = replicas[(self._next + step) % count]
            if replica.in_rotation and replica is not skip and replica.fresh_at >= floor:
                self._next = (self._next + step + 1) % count
                return replica
        return None

    def _drop(self, replica: Replica, why: str) -> None:
        if replica.in_rotation:
            IN_ROTATION.dec()
            log.warning("replica %s left the rotation: %s", replica.url, why)
        replica.in_rotation = False
        replica.why = why

    def _admit(self, replica: Replica) -> None:
        if not replica.in_rotation:
            IN_ROTATION.inc()
            log.info("replica %s is in the rotation", replica.url)
        replica.in_rotation = True
        replica.why = "ok"

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(self.probe_s)
            with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                await self.probe()

    async def probe(self) -> None:
        """One round: the primary's offset now, then each replica's state against it."""
        checked_at = time.monotonic()
        primary_offset: int | None = None
        try:
            fields = info_fields(await self.primary.info("replication"))
            if fields.get("role") == "master":
                primary_offset = int(fields["master_repl_offset"])
            self.primary_down = False
        except (TimeoutError, RedisError, OSError, KeyError, ValueError):
            self.primary_down = True
        await asyncio.gather(*(self._probe_one(r, checked_at, primary_offset) for r in self.replicas))

    async def _probe_one(self, replica: Replica, checked_at: float, primary_offset: int | None) -> None:
        if primary_offset is not None:
            replica.checkpoints.append((checked_at, primary_offset))
        try:
            _, raw_version, raw_info = await replica.pipe.execute(
                ("PING",), ("GET", self.keys.version), ("INFO", "replication"), timeout_s=max(self.timeout_s, 0.5)
            )
        except (RedisError, OSError) as exc:
            self._drop(replica, f"probe failed: {type(exc).__name__}")
            return
        fields = info_fields(raw_info)
        # A replica Sentinel just promoted is the primary (or about to be named so): what it holds is all
        # there is, and Sentinel may still name the old primary for a moment, so it keeps serving.
        offset_field = "slave_repl_offset" if fields.get("role") == "slave" else "master_repl_offset"
        with contextlib.suppress(KeyError, ValueError):
            replica.reached(int(fields[offset_field]))
        view = self._view
        version = view.version if view is not None else None
        held = int(raw_version) if raw_version is not None else None
        if version is not None and held != version:
            self._drop(replica, f"holds index version {held}, live is {version}")
        elif not self.primary_down and time.monotonic() - replica.fresh_at > self.max_lag_s:
            self._drop(replica, f"lags (link {fields.get('master_link_status')}, fresh {replica.fresh_at:.1f})")
        else:
            self._admit(replica)
