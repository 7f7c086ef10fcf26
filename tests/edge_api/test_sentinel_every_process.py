"""Every process follows a Sentinel failover, not only the API's request path (issue 17, item 5).

A real primary, replica and three sentinels. Before the primary is killed: an API (with its index
healer and back office), a `nearcart events aggregate` process, and the commands' functions all run
with the same settings, `NEARCART_REDIS_URL` naming the primary that then dies. After the kill,
without restarting anything, each must write to the promoted replica: an ingest whose offer
`/v1/offers` then answers, an index build, the aggregator counting beacons sent after the kill, a
back-office login, and the healer rebuilding an index lost on the new primary. The seconds from the
kill to each one's first success are printed (`-s`).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgspec
import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.testclient import TestClient

from cache.index_live import live_index
from cache.keys import Keys
from edge_api.app import create_app
from edge_api.commands.index import run_build_command
from edge_api.commands.ingest import run_ingest_command
from edge_api.event_buffer import append_events
from edge_api.settings import Settings
from tests.backoffice.office_site import PASSWORD_HASH, log_in
from tests.redis_servers import RedisGroup, RedisProcess, redis_group

ROOT = Path(__file__).resolve().parents[2]
MASTER = "nearcart-all"
ADMIN = "sentinel-admin@example.com"
SOLD, NEW = "3017620422003", "4006381333931"
PARIS = {"lat": 48.8566, "lon": 2.3522, "radius_km": 5}
FEEDS = {
    "retailers": "retailer_id,name,logo_url,cart_url_template,delivery_countries\n"
    "shopco,Shop Co,,https://shop.example/cart?add={gtin},FR\n",
    "stores": "retailer_id,store_id,name,address,postal_code,city,country,lat,lon\n"
    "shopco,paris-1,Shop Co Rivoli,1 rue de Rivoli,75001,Paris,FR,48.8566,2.3522\n",
    "offers": "retailer_id,store_id,gtin,price,currency,quantity,modes,updated_at\n"
    f"shopco,paris-1,{SOLD},2.99,EUR,5,in_store,2024-05-01T10:00:00+02:00\n",
}


@pytest.fixture
def group(tmp_path: Path) -> Iterator[RedisGroup]:
    with redis_group(tmp_path / "redis") as servers:
        yield servers


def new_offer_feed(folder: Path, attempt: int) -> tuple[Path, str]:
    """An offer the index does not hold yet, its price and date new at each attempt: an attempt whose
    PostgreSQL part committed before Redis failed leaves a change the next attempt still has to write."""
    price = f"{4 + attempt / 100:.2f}"
    stamp = datetime.now(UTC).isoformat()
    feed = folder / f"offers-{attempt}.csv"
    feed.write_text(FEEDS["offers"].splitlines()[0] + f"\nshopco,paris-1,{NEW},{price},EUR,7,in_store,{stamp}\n")
    return feed, price


def prices(client: TestClient, gtin: str) -> list[str]:
    answer = client.get("/v1/offers", params={"gtin": gtin, **PARIS})
    return [offer["price"]["amount"] for offer in answer.json()["offers"]] if answer.status_code == 200 else []


async def opens(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT coalesce(sum(opens), 0) FROM stats_daily"))


async def until(check: Callable[[], object], what: str, timeout_s: float = 30.0) -> None:
    """Poll `check` (plain or async) until it is true, failing after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_ingest_index_build_aggregator_office_and_healer_write_to_the_new_primary(
    db: asyncpg.Connection, group: RedisGroup, settings: Settings, tmp_path: Path
) -> None:
    primary = group.primary()
    replica = group.replica_of(primary)
    sentinels = [group.sentinel(primary, MASTER) for _ in range(3)]
    settings = msgspec.structs.replace(
        settings, redis_url=primary.url, redis_sentinels=tuple(s.address for s in sentinels),
        redis_sentinel_master=MASTER, aggregate_events=False, index_check_s=0.2, index_grace_s=0,
    )
    keys = Keys(settings.redis_prefix)
    for kind, text in FEEDS.items():
        feed = tmp_path / f"{kind}.csv"
        feed.write_text(text)
        assert await run_ingest_command(settings, kind, [feed]) == 0
    await run_build_command(settings)
    await db.execute("INSERT INTO users (email, role, password_hash) VALUES ($1, 'admin', $2)"
                     " ON CONFLICT (email) DO UPDATE SET password_hash = $2", ADMIN, PASSWORD_HASH)
    # The dedicated aggregator, as Kubernetes and compose run it: its settings from the environment.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NEARCART_REDIS_URL": primary.url,
           "NEARCART_REDIS_SENTINELS": ",".join(settings.redis_sentinels),
           "NEARCART_REDIS_SENTINEL_MASTER": MASTER, "NEARCART_DATABASE_URL": settings.database_url,
           "NEARCART_REDIS_PREFIX": keys.prefix}
    with (tmp_path / "aggregator.log").open("wb") as log:
        aggregator = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from edge_api.cli import main; main()", "events", "aggregate",
            cwd=ROOT, env=env, stderr=log,
        )
    try:
        with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
            await _fail_over(client, db, settings, keys, primary, replica, sentinels, tmp_path)
    finally:
        if aggregator.returncode is None:
            aggregator.kill()
        await aggregator.wait()


async def _fail_over(client: TestClient, db: asyncpg.Connection, settings: Settings, keys: Keys,
                     primary: RedisProcess, replica: RedisProcess, sentinels: list[RedisProcess],
                     folder: Path) -> None:
    # Everything is up and working on the first primary.
    await until(lambda: prices(client, SOLD) == ["2.99"], "/v1/offers answering from the first primary")
    beacon = {"type": "open", "campaign": "demo", "gtin": SOLD, "ts": int(time.time() * 1000)}
    assert client.post("/v1/events", json=[beacon]).status_code == 204
    await until(lambda: opens(db), "the aggregator counting on the first primary")
    assert await opens(db) == 1
    old_version = int(primary.client().get(keys.version) or 0)
    # The replica holds every write so far (index, consumer group, counted beacon) before the kill.
    assert primary.client().wait(1, 5000) == 1

    primary.kill()
    killed = time.monotonic()
    new_primary = replica.client()
    done: dict[str, float] = {}
    attempt = 0
    price = ""
    while len(done) < 6:
        assert time.monotonic() - killed < 60, f"after 60 s only these wrote to the new primary: {done}"
        now = time.monotonic() - killed
        if "promoted" not in done and new_primary.info("replication")["role"] == "master":
            done["promoted"] = now
            # Beacons in the new primary's stream from the start (the API's own buffered path is
            # tests/edge_api/test_sentinel_failover.py): the aggregator's delay is its own.
            async with aioredis.Redis.from_url(replica.url) as direct:
                await append_events(direct, keys, [{"kind": "open", "campaign": "demo", "gtin": SOLD,
                                                    "region": "FR-75", "ts": int(time.time() * 1000)}] * 5)
        if "a sentinel names it" not in done and any(
                s.client().execute_command("SENTINEL", "get-master-addr-by-name", MASTER)[1]
                == str(replica.port).encode() for s in sentinels):
            done["a sentinel names it"] = now
        if "office login" not in done:
            answer = log_in(client, ADMIN)
            if answer.status_code == 303 and client.get("/admin/").status_code == 200:
                done["office login"] = time.monotonic() - killed
        if "ingest" not in done:
            attempt += 1
            feed, price = new_offer_feed(folder, attempt)
            if await run_ingest_command(settings, "offers", [feed]) == 0:
                done["ingest"] = time.monotonic() - killed
        if "index build" not in done:
            try:
                await run_build_command(settings)
                done["index build"] = time.monotonic() - killed
            except (RedisError, OSError):
                pass
        if "aggregator" not in done and await opens(db) == 6:
            done["aggregator"] = time.monotonic() - killed
        await asyncio.sleep(0.1)

    # The writes are on the promoted replica, and the API answers from it.
    assert new_primary.info("replication")["role"] == "master"
    assert int(new_primary.get(keys.version) or 0) > old_version
    await until(lambda: prices(client, NEW) == [price], f"/v1/offers answering the ingested {price}")
    assert client.get("/admin/").status_code == 200
    assert await opens(db) == 6

    # The index lost on the new primary: the API's healer, connected to the dead one before, rebuilds it there.
    built = int(new_primary.get(keys.version) or 0)
    new_primary.delete(keys.version)
    lost = time.monotonic()

    async def healed() -> bool:
        probe = aioredis.Redis.from_url(replica.url)
        try:
            marker = await live_index(probe, keys)
        finally:
            await probe.aclose()
        return marker is not None and marker.version > built

    await until(healed, "the healer rebuilding on the new primary")
    done["healer (from the loss)"] = time.monotonic() - lost
    await until(lambda: prices(client, NEW) == [price], "/v1/offers answering from the healed index")
    print("\nseconds from the primary's kill to the first write on the new primary: "
          + ", ".join(f"{name} {seconds:.1f}" for name, seconds in done.items()))
