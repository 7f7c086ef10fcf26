from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import uvloop
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from cache.embedded import start_redis
from cache.keys import Keys
from cache.redis_pipe import RedisPipe


async def test_concurrent_callers_each_get_their_own_replies(redis: aioredis.Redis, keys: Keys) -> None:
    for i in range(200):
        await redis.set(f"{keys.prefix}k{i}", f"v{i}")
    pipe = RedisPipe(_url(redis), timeout_s=2)
    try:
        replies = await asyncio.gather(*(
            pipe.execute(("GET", f"{keys.prefix}k{i}"), ("STRLEN", f"{keys.prefix}k{i}")) for i in range(200)
        ))
    finally:
        pipe.close()
    assert replies == [[f"v{i}".encode(), len(f"v{i}")] for i in range(200)]


def test_pipe_works_on_uvloop_as_the_server_runs_it(services: tuple[str, str]) -> None:
    async def ping_twice() -> list[object]:
        pipe = RedisPipe(services[0], timeout_s=2)
        try:
            return await pipe.execute(("PING",), ("ECHO", "nearcart"))
        finally:
            pipe.close()

    assert uvloop.run(ping_twice()) == [b"PONG", b"nearcart"]


async def test_a_redis_error_is_raised_to_its_caller_only(redis: aioredis.Redis, keys: Keys) -> None:
    await redis.set(f"{keys.prefix}text", "x")
    pipe = RedisPipe(_url(redis), timeout_s=2)
    try:
        bad, good = await asyncio.gather(
            pipe.execute(("HGETALL", f"{keys.prefix}text")), pipe.execute(("GET", f"{keys.prefix}text")),
            return_exceptions=True,
        )
    finally:
        pipe.close()
    assert isinstance(bad, ResponseError) and "WRONGTYPE" in str(bad)
    assert good == [b"x"]


async def test_pipe_fails_fast_while_redis_is_down_and_recovers_when_it_is_back(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "r")
    pipe = RedisPipe(server.url, timeout_s=0.5, retry_s=0.05)
    try:
        assert await pipe.execute(("PING",)) == [b"PONG"]
        server.stop()
        with pytest.raises(RedisConnectionError):
            await pipe.execute(("PING",))
        server = start_redis(tmp_path / "r", port=server.port)
        await asyncio.sleep(0.1)
        assert await pipe.execute(("PING",)) == [b"PONG"]
    finally:
        pipe.close()
        server.stop()


def _url(redis: aioredis.Redis) -> str:
    kwargs = redis.connection_pool.connection_kwargs
    return f"redis://{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


async def test_calls_to_a_redis_that_never_answers_fail_at_their_own_deadline() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 20)  # reads the commands, never answers
        await asyncio.sleep(10)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pipe = RedisPipe(f"redis://127.0.0.1:{port}/0", timeout_s=0.1)
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        first = asyncio.ensure_future(pipe.execute(("PING",)))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(pipe.execute(("PING",)))
        done_at = {}
        for name, call in (("first", first), ("second", second)):
            with pytest.raises(RedisTimeoutError):
                await call
            done_at[name] = loop.time() - started
        # Each call waits its own timeout (the second began 50 ms later), and then fails rather than hang.
        assert 0.09 <= done_at["first"] < 1.0
        assert 0.14 <= done_at["second"] < 1.0
    finally:
        pipe.close()
        server.close()


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_worker_held_up_past_the_deadline_still_takes_the_reply_that_came_in_time(
    services: tuple[str, str], loop: str
) -> None:
    # The timeout is Redis's lateness, not the worker's: a collection or a long callback that
    # holds the loop past a call's deadline must not turn a reply already received into a 503.
    async def held_up() -> list[object]:
        pipe = RedisPipe(services[0], timeout_s=0.05)
        try:
            await pipe.execute(("PING",))  # connected
            call = asyncio.ensure_future(pipe.execute(("ECHO", "in time")))
            await asyncio.sleep(0)  # the call is made and its write is due next
            time.sleep(0.15)  # noqa: ASYNC251 - the worker is held up past the deadline before Redis even hears
            return await call
        finally:
            pipe.close()

    run = uvloop.run if loop == "uvloop" else asyncio.run
    assert run(held_up()) == [b"in time"]
