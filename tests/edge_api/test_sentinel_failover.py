"""Primary failover under Redis Sentinel: a real primary, replica and three sentinels; the primary is killed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import msgspec
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from cache.index import build_index
from cache.keys import Keys
from edge_api.app import create_app
from edge_api.settings import Settings
from tests.random_catalog import write_random_catalog
from tests.redis_servers import RedisGroup, RedisProcess, redis_group

MASTER = "nearcart"


@pytest.fixture
def group(tmp_path: Path) -> Iterator[RedisGroup]:
    with redis_group(tmp_path / "redis") as servers:
        yield servers


def replica_reads() -> float:
    return REGISTRY.get_sample_value("nearcart_index_reads_total", {"server": "replica"}) or 0.0


def lost(source: str) -> float:
    return REGISTRY.get_sample_value("nearcart_events_lost_total", {"source": source}) or 0.0


async def test_offers_answer_throughout_a_failover_and_events_resume_on_the_new_primary(
    db: asyncpg.Connection, group: RedisGroup, settings: Settings
) -> None:
    primary = group.primary()
    replica = group.replica_of(primary)
    sentinels = [group.sentinel(primary, MASTER) for _ in range(3)]
    keys = Keys(settings.redis_prefix)
    catalog = await write_random_catalog(db, seed=23, stores=300, gtins=3)
    client_redis = aioredis.Redis.from_url(primary.url)
    await build_index(db, client_redis, keys, grace_s=0)
    await client_redis.aclose()
    settings = msgspec.structs.replace(
        settings, redis_url=primary.url, aggregate_events=False, redis_replica_urls=(replica.url,),
        redis_sentinels=tuple(s.address for s in sentinels), redis_sentinel_master=MASTER,
    )
    _kill_the_primary_under_load(settings, primary, replica, catalog.gtins, keys)


def _kill_the_primary_under_load(settings: Settings, primary: RedisProcess, replica: RedisProcess, gtins: list[str],
                                 keys: Keys) -> None:
    """The test's synchronous part: TestClient runs the app's loop in its own thread."""
    deadline = time.monotonic() + 15
    while not replica.client().get(keys.version) and time.monotonic() < deadline:
        time.sleep(0.05)
    event = {"type": "open", "campaign": "demo", "gtin": gtins[0]}
    offers_failed = 0
    offers_slowest = 0.0
    events_failed = 0
    lost_before = lost("beacon")

    with TestClient(create_app(settings)) as client:
        # The worker reads the replica once its probe has seen it hold what the primary had when the
        # worker joined the change feed (cache/replicas.py): a worker up for more than a moment.
        warm = iter(range(10_000, 20_000))
        for _ in range(2):
            # Twice, apart: the feed's subscription, once made, asks for one more probe round.
            time.sleep(0.5)
            served = replica_reads()
            while replica_reads() == served:
                assert time.monotonic() < deadline + 15
                client.get("/v1/offers", params={"gtin": gtins[0], "lat": 48.0 + next(warm) * 1e-4,
                                                 "lon": 2.3})
        assert client.post("/v1/events", json=[{**event, "ts": int(time.time() * 1000)}]).status_code == 204
        primary.kill()
        killed_at = time.monotonic()
        new_primary = replica.client()
        sent = 0
        resumed_at = None
        i = 0
        while resumed_at is None and time.monotonic() - killed_at < 60:
            i += 1
            place = {"gtin": gtins[i % 3], "lat": 48.6 + (i % 499) * 0.001, "lon": 2.1 + (i % 491) * 0.001,
                     "radius_km": 25}
            started = time.perf_counter()
            answer = client.get("/v1/offers", params=place)
            offers_slowest = max(offers_slowest, time.perf_counter() - started)
            offers_failed += answer.status_code != 200
            if time.monotonic() - killed_at < 5:
                # Beacons go on while no primary answers: the worker keeps them (edge_api/event_buffer.py).
                beacon = client.post("/v1/events", json=[{**event, "ts": int(time.time() * 1000)}])
                events_failed += beacon.status_code != 204
                sent += 1
            # Events resumed: everything sent since the kill is in the new primary's stream.
            if new_primary.info("replication")["role"] == "master" and \
                    sum(f[b"kind"] == b"open" for _, f in new_primary.xrange(keys.events)) >= sent + 1:
                resumed_at = time.monotonic()
            time.sleep(0.01)
        assert resumed_at is not None, "events never reached the new primary"
        # A click, on the new primary: its link is signed by this worker, its event goes to the stream.
        answer = client.get("/v1/offers", params={"gtin": gtins[0], "lat": 48.85, "lon": 2.35,
                                                  "radius_km": 50}).json()
        url = answer["offers"][0]["url"]
        click = client.get(url, follow_redirects=False)
        time.sleep(0.3)
        streamed = new_primary.xrange(keys.events)

    print(f"\nfailover: {offers_failed} offers answers failed of {i}, slowest {offers_slowest * 1000:.0f} ms; "
          f"{sent} beacons sent in the first 5 s, {events_failed} refused, all in the new primary's stream "
          f"{resumed_at - killed_at:.1f} s after the kill; counted lost: {lost('beacon') - lost_before:.0f}")
    assert offers_failed == 0
    assert click.status_code in (302, 303, 307), click.text
    assert b"click" in [fields[b"kind"] for _, fields in streamed]
    # Kept in the worker through the failover, written to the new primary: none refused, none lost.
    assert events_failed == 0
    assert lost("beacon") == lost_before
