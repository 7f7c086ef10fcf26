"""Events survive a Redis outage (#14 finding 9): kept in the worker, written and counted when Redis returns.

Each test runs a Redis of its own on a port of its own, and stops it: never the shared one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import msgspec
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from cache.embedded import EmbeddedRedis, free_port, start_redis
from cache.keys import Keys
from edge_api.app import create_app
from edge_api.event_buffer import EventBuffer
from edge_api.settings import Settings
from edge_api.tokens import ClickTarget, sign_click

GTIN = "03017620422003"
SHOPPER = ("90.1.2.3", 50000)  # Tourcoing: département 59


def beacons(kind: str, n: int) -> list[dict[str, object]]:
    return [{"type": kind, "campaign": "spring", "gtin": GTIN, "ts": time.time() * 1000} for _ in range(n)]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[list[EmbeddedRedis]]:
    """A Redis this test may stop and restart (the list holds the running one)."""
    running = [start_redis(tmp_path / "redis", free_port())]
    yield running
    running[0].stop()


def opens_counted(database_url: str) -> int:
    async def read() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            return int(await conn.fetchval("SELECT coalesce(sum(opens), 0) FROM stats_daily WHERE region = 'FR-59'"))
        finally:
            await conn.close()

    return asyncio.run(read())


def lost(source: str) -> float:
    return REGISTRY.get_sample_value("nearcart_events_lost_total", {"source": source}) or 0.0


def test_events_sent_while_redis_is_down_are_all_counted_after_it_returns(
    settings: Settings, own_redis: list[EmbeddedRedis], db: asyncpg.Connection, tmp_path: Path
) -> None:
    own = msgspec.structs.replace(settings, redis_url=own_redis[0].url)
    port = own_redis[0].port
    lost_before = lost("beacon")
    with TestClient(create_app(own), client=SHOPPER, follow_redirects=False) as client:
        assert client.post("/v1/events", json=beacons("open", 5)).status_code == 204
        own_redis[0].stop()
        during = [client.post("/v1/events", json=beacons("open", 10)).status_code for _ in range(30)]
        assert during == [204] * 30
        own_redis[0] = start_redis(tmp_path / "redis", port)  # back, and empty
        deadline = time.monotonic() + 60
        while opens_counted(settings.database_url) < 305 and time.monotonic() < deadline:
            time.sleep(0.2)
    assert opens_counted(settings.database_url) == 305
    assert lost("beacon") == lost_before


async def test_beyond_its_bound_the_buffer_drops_and_counts_what_it_drops(keys: Keys) -> None:
    unreachable = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}", socket_connect_timeout=0.2)
    buffer = EventBuffer(unreachable, keys, capacity=3)
    before = lost("beacon")
    await buffer.append([{"kind": "open"}] * 2, "beacon")
    await buffer.append([{"kind": "open"}] * 2, "beacon")
    assert len(buffer) == 3
    assert lost("beacon") == before + 1
    await unreachable.aclose()


def test_clicks_while_redis_is_down_still_redirect_and_are_counted_later(
    settings: Settings, own_redis: list[EmbeddedRedis], db: asyncpg.Connection, tmp_path: Path
) -> None:
    asyncio.run(_insert_retailer(settings.database_url))
    own = msgspec.structs.replace(settings, redis_url=own_redis[0].url)
    port = own_redis[0].port
    link = sign_click(own, ClickTarget("shop", "", GTIN, "spring", int(time.time()), 450, "EUR"))
    with TestClient(create_app(own), client=SHOPPER, follow_redirects=False) as client:
        own_redis[0].stop()
        assert [client.get(f"/v1/go/{link}").status_code for _ in range(4)] == [302] * 4
        own_redis[0] = start_redis(tmp_path / "redis", port)
        deadline = time.monotonic() + 60
        while _intent(settings.database_url) < (4, 1800) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert _intent(settings.database_url) == (4, 1800)


async def _insert_retailer(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("INSERT INTO retailers (retailer_id, name, cart_url_template)"
                           " VALUES ('shop', 'Shop', 'https://shop.example/{gtin}')")
    finally:
        await conn.close()


def _intent(database_url: str) -> tuple[int, int]:
    async def read() -> tuple[int, int]:
        conn = await asyncpg.connect(database_url)
        try:
            row = await conn.fetchrow("SELECT coalesce(sum(clicks), 0), coalesce(sum(intent_cents), 0) FROM stats_daily"
                                      " WHERE mode = 'delivery' AND currency = 'EUR'")
            return int(row[0]), int(row[1])
        finally:
            await conn.close()

    return asyncio.run(read())


async def test_kept_events_carry_an_event_id_and_nothing_about_the_shopper(keys: Keys) -> None:
    unreachable = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}", socket_connect_timeout=0.2)
    buffer = EventBuffer(unreachable, keys)
    await buffer.append([{"kind": "open", "region": "FR-59"}] * 3, "beacon")
    kept = list(buffer._pending)
    assert len({record["eid"] for record in kept}) == 3
    assert {k for record in kept for k in record} == {"kind", "region", "eid"}
    await unreachable.aclose()
