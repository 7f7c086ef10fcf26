"""Events Redis could not take, kept in the worker and written when it returns (SPEC "Statistics").

`POST /v1/events` and `/v1/go` hand their records to `EventBuffer.append`: straight to the
stream while Redis answers; while it does not, into a bounded queue here (the shopper's
request still succeeds), which a background flusher writes with backoff once Redis is back.
Beyond `capacity` events, new ones are dropped and counted in `nearcart_events_lost_total`.
A reply lost or late after Redis applied a write looks like a failure, and the write is made
again: a request's XADD that timed out is kept and flushed, a flush whose reply was lost is
flushed again. So every event gets its event id (`eid`) BEFORE its first write, and keeps it
through every retry: the aggregator counts an `eid` once, however many times it reaches the
stream. An eid is `<ms>-<random>` (the worker's clock in ms, 63 random bits): nothing about the
shopper, unique without coordination, and ordered by time so the aggregator forgets old ones
with a range delete.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

from cache.keys import Keys

log = logging.getLogger("nearcart.events")
Record = Mapping[str, str | int | float]
# About 300 bytes an event: 50,000 kept cost some 15 MB per worker, minutes of a busy site's beacons.
CAPACITY = 50_000
# Bounds the stream between two runs of the aggregator (XADD MAXLEN ~ trims in whole nodes, cheaply).
STREAM_MAXLEN = 1_000_000
FLUSH_BATCH = 100
EVENTS_LOST = Counter("nearcart_events_lost_total", "Events dropped: the worker's buffer was full, or it stopped",
                      ["source"])
EVENTS_BUFFERED = Gauge("nearcart_events_buffered", "Events kept in this worker until Redis takes them")


def with_event_ids(records: Sequence[Record]) -> list[Record]:
    """`records` each with a fresh event id (see the module docstring)."""
    ms = int(time.time() * 1000)
    return [{**record, "eid": f"{ms}-{secrets.randbits(63)}"} for record in records]


async def append_events(redis: aioredis.Redis, keys: Keys, events: Sequence[Record], atomic: bool = False) -> None:
    """XADD each event to the stream in one round trip (all or none with `atomic`)."""
    pipe = redis.pipeline(transaction=atomic)
    for event in events:
        fields: dict[Any, Any] = dict(event)
        pipe.xadd(keys.events, fields, maxlen=STREAM_MAXLEN, approximate=True)
    await pipe.execute()


class EventBuffer:
    """`redis` writes a request's events (short timeouts); `flush_redis`, if given, the kept ones.

    The flusher deserves more patience than a request: a batch timed out is written again.
    """

    def __init__(self, redis: aioredis.Redis, keys: Keys, capacity: int = CAPACITY,
                 flush_redis: aioredis.Redis | None = None) -> None:
        self.redis = redis
        self.flush_redis = flush_redis or redis
        self.keys = keys
        self.capacity = capacity
        self._pending: deque[Record] = deque()
        self._waiting = asyncio.Event()

    def __len__(self) -> int:
        return len(self._pending)

    async def append(self, records: Sequence[Record], source: str) -> None:
        """Write `records` to the stream, or keep them for the flusher; never raises for Redis."""
        records = with_event_ids(records)
        if self._pending:
            # Redis failed a moment ago: do not spend a timeout per request, queue behind the others.
            self._keep(records, source)
            return
        try:
            await append_events(self.redis, self.keys, records)
        except (RedisError, OSError):
            self._keep(records, source)

    def _keep(self, records: Sequence[Record], source: str) -> None:
        room = max(0, self.capacity - len(self._pending))
        self._pending.extend(records[:room])
        if len(records) > room:
            EVENTS_LOST.labels(source).inc(len(records) - room)
        EVENTS_BUFFERED.set(len(self._pending))
        self._waiting.set()

    async def flush(self) -> int:
        """Write what is kept, batch by batch; how many were written before Redis failed (if it did)."""
        written = 0
        while self._pending:
            batch = list(islice(self._pending, FLUSH_BATCH))
            await append_events(self.flush_redis, self.keys, batch, atomic=True)
            for _ in batch:  # only the flusher takes from the left; requests add on the right meanwhile
                self._pending.popleft()
            written += len(batch)
            EVENTS_BUFFERED.set(len(self._pending))
        return written

    async def flush_forever(self, first_retry_s: float = 0.2, max_retry_s: float = 5.0) -> None:
        """Background task: flush whenever something is kept, retrying with backoff while Redis is away."""
        delay = first_retry_s
        while True:
            await self._waiting.wait()
            try:
                written = await self.flush()
            except (RedisError, OSError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_retry_s)
                continue
            if written:
                log.info("wrote %d events kept while Redis was unreachable", written)
            delay = first_retry_s
            if not self._pending:
                self._waiting.clear()

    async def close(self) -> None:
        """At shutdown: one last try; what Redis still refuses is counted lost."""
        try:
            await asyncio.wait_for(self.flush(), 2.0)
        except (RedisError, OSError):
            pass
        if self._pending:
            EVENTS_LOST.labels("shutdown").inc(len(self._pending))
            log.warning("%d events lost at shutdown: Redis unreachable", len(self._pending))
            self._pending.clear()
            EVENTS_BUFFERED.set(0)
