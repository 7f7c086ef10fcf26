"""One multiplexed Redis connection per worker for the offers hot path.

`redis.asyncio` checks a connection out of a pool, writes, and parses through
several layers of Python for every command; at edge request rates that costs more
than Redis itself. Here every caller's commands go down one connection: they are
packed by hiredis, buffered, and written together once per event-loop tick, and
replies (which Redis sends in order) resolve the callers' futures in FIFO order as
hiredis' C reader parses them. Only read-only commands go through it; everything
else keeps using `redis.asyncio`.

A lost connection fails every pending call with `ConnectionError`; the next call
reconnects (at most once per `retry_s`), so service resumes by itself when Redis
comes back. With `locate` (Sentinel: cache/redis_topology.py) each connection first
asks where the server is, so a reconnection after a failover finds the new primary.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

# A deadline timer this late means the worker itself was held up.
LATE_WAKE_S = 0.005


class _Call:
    """One caller's batch: its future resolves when all `count` replies have arrived, or fails at `deadline`."""

    __slots__ = ("future", "count", "replies", "deadline")

    def __init__(self, future: asyncio.Future[list[Any]], count: int, deadline: float) -> None:
        self.future = future
        self.count = count
        self.replies: list[Any] = []
        self.deadline = deadline


class _Protocol(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, on_lost: Any, timeout_s: float) -> None:
        # Kept: asking asyncio for the running loop costs a system call (getpid) each time.
        self.loop = loop
        self.timeout_s = timeout_s
        self.reader = hiredis.Reader()
        self.waiting: collections.deque[_Call] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.on_lost = on_lost
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweep_at = 0.0

    def watch(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Make sure calls up to `deadline` fail on time if Redis does not answer.

        One timer per connection instead of one per call: calls are answered in order and
        their deadlines grow in the same order, so the timer only needs to wake at the
        oldest pending deadline (a per-call timeout costs more than the call's parsing).
        """
        if self._sweeper is None:
            self._sweeper = loop.call_at(deadline, self._sweep, loop, deadline)
            self._sweep_at = deadline
        elif deadline < self._sweep_at:
            # A call with a shorter budget than those before it (`execute(timeout_s=...)`).
            self._sweeper.cancel()
            self._sweeper = loop.call_at(deadline, self._sweep, loop, deadline)
            self._sweep_at = deadline

    def _sweep(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        self._sweeper = None
        now = loop.time()
        if now - due > LATE_WAKE_S:
            # This worker, not Redis, was late (a long callback, a collection, the CPU taken away):
            # commands may not even have been written yet, or replies be waiting unread. The
            # timeout is Redis's lateness: it gets its full time again from now.
            for call in self.waiting:
                call.deadline = max(call.deadline, now + self.timeout_s)
        next_due = 0.0
        for call in self.waiting:
            if call.future.done():
                continue
            if call.deadline > now:
                # Deadlines grow in call order, except behind a call given a shorter budget: look on.
                next_due = min(next_due or call.deadline, call.deadline)
                continue
            # Its replies, when they come, are still consumed in order (`data_received`).
            call.future.set_exception(RedisTimeoutError("Redis did not answer in time"))
        if next_due:
            self.watch(loop, next_due)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport does not inherit asyncio.Transport, but has the same methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiting = self.waiting
        while (reply := self.reader.gets()) is not False:
            call = waiting[0]
            call.replies.append(reply)
            if len(call.replies) < call.count:
                continue
            waiting.popleft()
            # A caller that timed out has gone; its replies are still consumed, in order.
            if not call.future.done():
                call.future.set_result(call.replies)

    def connection_lost(self, exc: Exception | None) -> None:
        error = RedisConnectionError(f"connection to Redis lost: {exc}")
        while self.waiting:
            call = self.waiting.popleft()
            if not call.future.done():
                call.future.set_exception(error)
        self.transport = None
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self.on_lost(self)


class RedisPipe:
    """Pipelined read-only commands over one shared connection."""

    def __init__(self, url: str, timeout_s: float = 0.05, retry_s: float = 0.1,
                 locate: Callable[[], Awaitable[tuple[str, int]]] | None = None) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.password = unquote(parts.password) if parts.password else None
        self.username = unquote(parts.username) if parts.username else None
        self.db = int(parts.path.lstrip("/") or 0) if parts.path.lstrip("/").isdigit() else 0
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self.locate = locate
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._last_attempt = 0.0
        self._buffer: list[bytes] = []
        self._flush_scheduled = False

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        if self.locate is not None:
            self.host, self.port = await asyncio.wait_for(self.locate(), max(self.timeout_s, 1.0))
        _, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: _Protocol(loop, self._lost, self.timeout_s), self.host, self.port),
            self.timeout_s,
        )
        setup: list[tuple[Any, ...]] = []
        if self.password is not None:
            setup.append(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
        if self.db:
            setup.append(("SELECT", self.db))
        if setup:
            call = _Call(loop.create_future(), len(setup), loop.time() + self.timeout_s)
            protocol.waiting.append(call)
            assert protocol.transport is not None
            protocol.transport.write(b"".join(hiredis.pack_command(command) for command in setup))
            _raise_errors(await asyncio.wait_for(call.future, self.timeout_s))
        return protocol

    def _lost(self, protocol: _Protocol) -> None:
        if self._protocol is protocol:
            self._protocol = None

    async def _reconnect(self) -> _Protocol:
        """A live connection, for `execute` when it has none: one attempt shared by all callers, rate-limited."""
        if self._connecting is None:
            if time.monotonic() - self._last_attempt < self.retry_s:
                raise RedisConnectionError("Redis unreachable; retrying shortly")
            self._last_attempt = time.monotonic()
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            self._protocol = await asyncio.shield(connecting)
        except (TimeoutError, OSError, RedisConnectionError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
        finally:
            if self._connecting is connecting and connecting.done():
                self._connecting = None
        return self._protocol

    async def execute(self, *commands: tuple[Any, ...], timeout_s: float = 0.0) -> list[Any]:
        """Send `commands` (adjacent on the wire: one round trip) and return their replies.

        `timeout_s` shortens this call's wait (a retry within what is left of a request's budget).
        """
        protocol = self._protocol
        if protocol is None or protocol.transport is None:
            protocol = await self._reconnect()
        loop = protocol.loop
        deadline = loop.time() + (timeout_s or self.timeout_s)
        call = _Call(loop.create_future(), len(commands), deadline)
        protocol.waiting.append(call)
        protocol.watch(loop, deadline)
        buffer = self._buffer
        for command in commands:
            buffer.append(hiredis.pack_command(command))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush, protocol)
        return _raise_errors(await call.future)

    def _flush(self, protocol: _Protocol) -> None:
        self._flush_scheduled = False
        data = b"".join(self._buffer)
        self._buffer.clear()
        if protocol.transport is not None:
            protocol.transport.write(data)

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None


def _raise_errors(replies: list[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, hiredis.ReplyError):
            raise ResponseError(str(reply))
    return replies
