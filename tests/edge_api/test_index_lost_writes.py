"""A whole index that lost writes PostgreSQL has heals itself, with real processes (issue 17).

Real redis-servers of the test's own (and three Sentinels), a real `nearcart serve` and real
`nearcart ingest` processes:
1. the primary dies, an ingest commits its batch to PostgreSQL and fails to write the index (it says
   so and exits 1); Redis comes back with its data (append-only file), whole but without that batch:
   the API answers the missing offers by itself, nothing run by hand;
2. Sentinel promotes a replica that never received the last ingest's writes (replication is
   asynchronous: the replica was stopped while the primary acknowledged them): the API rebuilds the
   index on the new primary from PostgreSQL, and answers with the offers the replica missed;
3. an ingest in progress (its batches committed, its generation not recorded yet) makes no worker rebuild.
The seconds from Redis's return (or the primary's kill) to the first exact answer are printed (`-s`).
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
import redis.asyncio as aioredis

from cache.embedded import free_port
from cache.gtin import check_digit
from cache.index_generation import OFFERS as OFFERS_PART
from cache.index_generation import catalog_generation, index_behind
from cache.keys import Keys
from edge_api.commands.index import run_build_command
from edge_api.commands.ingest import run_ingest_command
from edge_api.settings import Settings
from loadtest.stack import _bin, running, settings_env
from tests.redis_servers import RedisGroup, RedisProcess, redis_group, wait_for

MASTER = "nearcart-lost"
SOLD, NEW = "03017620422003", "04006381333931"
HEALED_WITHIN_S = 30.0
# Every query of a test at a place of its own: an answer kept from before the loss must not pass for a healed one.
NUDGES = itertools.count(1)
RETAILERS = ("retailer_id,name,logo_url,cart_url_template,delivery_countries\n"
             "shopco,Shop Co,,https://shop.example/cart?add={gtin},FR\n"
             "bigbox,Big Box,,https://bigbox.example/b/{gtin},FR\n")
STORES = ("retailer_id,store_id,name,address,postal_code,city,country,lat,lon\n"
          "shopco,paris-1,Shop Co Rivoli,1 rue de Rivoli,75001,Paris,FR,48.8566,2.3522\n"
          "bigbox,paris-9,Big Box Bercy,9 quai de Bercy,75012,Paris,FR,48.8330,2.3860\n")
OFFER_HEADER = "retailer_id,store_id,gtin,price,currency,quantity,modes,updated_at\n"
OFFERS = OFFER_HEADER + (f"shopco,paris-1,{SOLD},2.99,EUR,5,in_store,2024-05-01T10:00:00+02:00\n"
                         f"bigbox,paris-9,{SOLD},3.10,EUR,9,in_store,2024-05-01T10:00:00+02:00\n")
# What the index has not seen: a product new to it, in two stores and online, and a new price of a sold one.
LATER = OFFER_HEADER + (f"shopco,paris-1,{NEW},4.20,EUR,7,in_store,2024-06-01T10:00:00+02:00\n"
                        f"bigbox,paris-9,{NEW},4.10,EUR,3,click_collect,2024-06-01T10:00:00+02:00\n"
                        f"shopco,,{NEW},4.50,EUR,50,delivery,2024-06-01T10:00:00+02:00\n"
                        f"bigbox,paris-9,{SOLD},2.50,EUR,9,in_store,2024-06-01T10:00:00+02:00\n")


@pytest.fixture
def group(tmp_path: Path) -> Iterator[RedisGroup]:
    with redis_group(tmp_path / "redis") as servers:
        yield servers


def durable(group: RedisGroup, port: int | None = None) -> RedisProcess:
    """A primary that keeps its data across a crash (append-only file, synced at every write)."""
    return group.start("--appendonly", "yes", "--appendfsync", "always", port=port)


def sentinel(group: RedisGroup, primary: RedisProcess) -> RedisProcess:
    """As `RedisGroup.sentinel`, but slow to put a replica that follows another address back under the primary
    (failover-timeout): the replica here was cut off from the primary on purpose."""
    return group.start(sentinel_conf=f"sentinel monitor {MASTER} 127.0.0.1 {primary.port} 2\n"
                                     f"sentinel down-after-milliseconds {MASTER} 1000\n"
                                     f"sentinel failover-timeout {MASTER} 60000\n")


async def load(settings: Settings, folder: Path) -> None:
    for kind, text in (("retailers", RETAILERS), ("stores", STORES), ("offers", OFFERS)):
        feed = folder / f"{kind}.csv"
        feed.write_text(text)
        assert await run_ingest_command(settings, kind, [feed]) == 0
    await run_build_command(settings)


def ingest(settings: Settings, folder: Path, text: str) -> subprocess.CompletedProcess[str]:
    """`nearcart ingest offers` as its own process, as a CronJob runs it."""
    feed = folder / f"later-{time.monotonic_ns()}.csv"
    feed.write_text(text)
    return subprocess.run([_bin("nearcart"), "ingest", "offers", str(feed)], env=settings_env(settings),
                          capture_output=True, text=True, timeout=120)


async def truth(db: asyncpg.Connection, gtin: str) -> set[tuple[str, str, str, str]]:
    """What PostgreSQL says `/v1/offers` must answer for `gtin` in Paris: (retailer, mode, store, price)."""
    rows = await db.fetch(
        "SELECT retailer_id, store_id, price::text, modes FROM offers WHERE gtin = $1 AND quantity > 0", gtin)
    names = {1: "in_store", 2: "click_collect", 4: "delivery"}
    return {(row["retailer_id"], mode, row["store_id"], row["price"])
            for row in rows for bit, mode in names.items() if row["modes"] & bit}


def answered(api: str, gtin: str, nudge: int) -> set[tuple[str, str, str, str]] | None:
    """The offers answered around Paris (moved by `nudge` ten-millionths of a degree: no cached answer), or None."""
    params: dict[str, Any] = {"gtin": gtin, "lat": 48.85 + nudge * 1e-7, "lon": 2.36, "radius_km": 20}
    try:
        answer = httpx.get(f"{api}/v1/offers", params=params, timeout=5)
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None
    return {(o["retailer"]["id"], o["mode"], (o["store"] or {}).get("id", ""), f"{float(o['price']['amount']):.2f}")
            for o in answer.json()["offers"]}


async def until_exact(api: str, db: asyncpg.Connection, since: float) -> float:
    """Seconds from `since` to the first answers of both products equal to PostgreSQL's."""
    expected = {gtin: {(r, m, s, f"{float(p):.2f}") for r, m, s, p in await truth(db, gtin)} for gtin in (NEW, SOLD)}
    seen: list[Any] = []
    while time.monotonic() - since < HEALED_WITHIN_S:
        nudge = next(NUDGES)
        got = {gtin: answered(api, gtin, nudge) for gtin in (NEW, SOLD)}
        if got == expected:
            return time.monotonic() - since
        seen.append(got[NEW])
        await asyncio.sleep(0.05)
    raise AssertionError(f"no exact answer within {HEALED_WITHIN_S} s: expected {expected[NEW]}, last {seen[-3:]}")


def serve(settings: Settings) -> Any:
    port = free_port()
    command = [_bin("nearcart"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    return running(command, settings_env(settings), port, "/readyz")


async def test_an_ingest_whose_redis_died_after_the_commit_is_in_the_answers_once_redis_is_back(
    db: asyncpg.Connection, group: RedisGroup, settings: Settings, tmp_path: Path
) -> None:
    primary = durable(group)
    settings = msgspec.structs.replace(settings, redis_url=primary.url, aggregate_events=False, index_grace_s=0,
                                       log_level="warning")
    await load(settings, tmp_path)
    with serve(settings) as api:
        assert answered(api, SOLD, next(NUDGES)) == {("shopco", "in_store", "paris-1", "2.99"),
                                          ("bigbox", "in_store", "paris-9", "3.10")}
        primary.kill()
        stopped = ingest(settings, tmp_path, LATER)
        assert stopped.returncode == 1
        assert "did not reach the Redis index" in stopped.stderr, stopped.stderr
        assert "nearcart index build" in stopped.stderr
        # The batch is in PostgreSQL: a re-run would find it there and write nothing.
        assert await db.fetchval("SELECT count(*) FROM offers WHERE gtin = $1", NEW) == 3

        durable(group, port=primary.port)  # back with everything it had: a whole index without the batch
        back = time.monotonic()
        healed_s = await until_exact(api, db, back)
    print(f"\nRedis back -> first exact answer: {healed_s:.1f} s (healer period {settings.index_check_s} s)")


async def test_a_replica_promoted_without_the_last_writes_is_rebuilt_from_postgresql(
    db: asyncpg.Connection, group: RedisGroup, settings: Settings, tmp_path: Path
) -> None:
    primary = group.primary()
    replica = group.replica_of(primary)
    sentinels = [sentinel(group, primary) for _ in range(3)]
    settings = msgspec.structs.replace(
        settings, redis_url=primary.url, redis_sentinels=tuple(s.address for s in sentinels),
        redis_sentinel_master=MASTER, aggregate_events=False, index_grace_s=0, log_level="warning",
    )
    keys = Keys(settings.redis_prefix)
    await load(settings, tmp_path)
    assert primary.client().wait(1, 5000) == 1
    built = int(replica.client().get(keys.version) or 0)
    assert built > 0
    with serve(settings) as api:
        # The replica's link to the primary goes (a partition): the primary acknowledges an ingest the
        # replica never receives, as asynchronous replication allows.
        replica.client().replicaof("127.0.0.1", free_port())
        done = ingest(settings, tmp_path, LATER)
        assert done.returncode == 0, done.stderr
        await until_exact(api, db, time.monotonic())  # answered from the primary, which has it all
        assert int(replica.client().get(keys.generation) or 0) < await catalog_generation(db, keys, OFFERS_PART)
        primary.kill()
        killed = time.monotonic()
        wait_for(lambda: replica.client().info("replication")["role"] == "master", "the replica promoted", 30)
        promoted_s = time.monotonic() - killed
        healed_s = await until_exact(api, db, killed)
        # What answers is a rebuild on the promoted replica, not anything it had.
        assert int(replica.client().get(keys.version) or 0) > built
    print(f"\nprimary killed -> replica promoted {promoted_s:.1f} s -> first exact answer {healed_s:.1f} s"
          f" (healer period {settings.index_check_s} s)")


def gtin8(n: int) -> str:
    body = f"{4000000 + n:07d}"
    return body + str(check_digit(body))


def big_offer_feed(folder: Path, stores: int, gtins: int) -> Path:
    """`stores` x `gtins` offers: a run of several batches (cache/ingest.py BATCH_ROWS), each committed alone."""
    feed = folder / "big.csv"
    with feed.open("w") as out:
        out.write(OFFER_HEADER)
        for g in range(gtins):
            gtin = gtin8(g)
            out.writelines(f"shopco,s{s},{gtin},{1 + s % 50}.{g % 100:02d},EUR,{1 + (s + g) % 9},in_store,"
                           "2024-06-01T10:00:00+02:00\n" for s in range(stores))
    return feed


async def test_an_ingest_in_progress_is_not_taken_for_a_loss(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, settings: Settings, tmp_path: Path
) -> None:
    settings = msgspec.structs.replace(settings, aggregate_events=False, index_grace_s=0, index_check_s=0.2,
                                       log_level="warning")
    stores = 400
    store_feed = tmp_path / "stores.csv"
    store_feed.write_text(STORES.splitlines()[0] + "\n" + "".join(
        f"shopco,s{s},Store {s},1 rue Test,75001,Paris,FR,{48.80 + s * 1e-4:.4f},2.35\n" for s in range(stores)))
    (tmp_path / "retailers.csv").write_text(RETAILERS)
    assert await run_ingest_command(settings, "retailers", [tmp_path / "retailers.csv"]) == 0
    assert await run_ingest_command(settings, "stores", [store_feed]) == 0
    await run_build_command(settings)

    async def builds() -> tuple[bytes | None, bytes | None, bool]:
        """The live version, the last version a build took (it takes one first), whether a worker set out to."""
        return (await redis.get(keys.version), await redis.get(keys.seq),
                bool(await redis.exists(keys.rebuild_lock)))

    before = await builds()
    feed = big_offer_feed(tmp_path, stores, 500)  # 200,000 offers: four batches

    with serve(settings) as api:
        process = subprocess.Popen(  # noqa: ASYNC220 (the test polls it)
            [_bin("nearcart"), "ingest", "offers", str(feed)], env=settings_env(settings),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seen = {before}
        behind_while_running = 0
        while process.poll() is None:
            seen.add(await builds())
            behind_while_running += await index_behind(db, redis, keys) is not None
            await asyncio.sleep(0.05)
        assert process.returncode == 0, process.stderr.read() if process.stderr else ""
        # The window existed: batches counted in PostgreSQL before the run recorded them in Redis.
        assert behind_while_running > 0
        for _ in range(20):  # five healer periods after the run
            seen.add(await builds())
            await asyncio.sleep(0.05)
        assert seen == {before}, "a worker set out to rebuild the index while (or after) an ingest wrote to it"
        assert await index_behind(db, redis, keys) is None
        assert await catalog_generation(db, keys, OFFERS_PART) > 0
        # The run's own writes are what answers.
        sold = answered(api, gtin8(0), next(NUDGES))
        assert sold and {(retailer, mode) for retailer, mode, _, _ in sold} == {("shopco", "in_store")}
