"""The index finds writes it lost, not only a missing index (issue 17): write generations and the healer.

A Redis that cannot be reached is a real closed port: the ingest commits its batch to PostgreSQL, then its
first Redis write fails, as when the primary dies mid-ingest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from backoffice.retailer_profile import Profile, save_profile
from cache.directory import load_directory
from cache.embedded import free_port
from cache.index import build_index, index_writer_lock, live_version
from cache.index_generation import (
    DIRECTORY,
    OFFERS,
    GenerationBumps,
    IndexWritesLost,
    catalog_generation,
    index_behind,
    redis_generation,
)
from cache.index_healer import IndexHealer
from cache.keys import Keys
from cache.unconfirmed import apply_unconfirmed
from edge_api.settings import Settings
from tests.cache.test_ingest import NUTELLA, OFFER_HEADER, ingest, load_catalog, near_paris, store_offers, write

# A store offer of a product the catalog does not sell yet, and a new price for one it does.
NEW_GTIN = "04006381333931"
NEW_OFFER = OFFER_HEADER + "shopco,paris-1,4006381333931,4.20,EUR,7,in_store,2024-06-01T10:00:00+02:00\n"
REPRICED = OFFER_HEADER + "bigbox,paris-9,3017620422003,2.50,EUR,40,in_store,2024-06-01T10:00:00+02:00\n"


@pytest.fixture
async def unreachable() -> AsyncIterator[aioredis.Redis]:
    """A client of a port nothing listens on: every command fails at once with a connection error."""
    client = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    yield client
    await client.aclose()


def healer(settings: Settings, keys: Keys) -> IndexHealer:
    return IndexHealer(settings.redis_url, settings.database_url, keys, grace_s=0)


async def heal(settings: Settings, keys: Keys) -> tuple[int | None, IndexHealer]:
    worker = healer(settings, keys)
    try:
        return await worker.heal_once(), worker
    finally:
        await worker.stop()


async def test_ingests_and_builds_leave_redis_at_the_generation_postgresql_counts(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, settings: Settings, tmp_path: Path
) -> None:
    await load_catalog(db, redis, keys, tmp_path)
    await build_index(db, redis, keys, grace_s=0)
    built = await catalog_generation(db, keys, OFFERS)
    assert built > 0 and await redis_generation(redis, keys.generation) == built
    assert await redis_generation(redis, keys.directory_generation) == await catalog_generation(db, keys, DIRECTORY)

    await ingest(db, redis, keys, "offers", write(tmp_path, "repriced.csv", REPRICED))
    assert await catalog_generation(db, keys, OFFERS) == built + 1
    assert await index_behind(db, redis, keys) is None
    # The same feed again changes nothing, so it counts nothing.
    await ingest(db, redis, keys, "offers", write(tmp_path, "repriced.csv", REPRICED))
    assert await catalog_generation(db, keys, OFFERS) == built + 1
    version = await live_version(redis, keys)
    built, worker = await heal(settings, keys)
    assert built is None and not worker.rebuilt and not worker.refreshed
    assert await live_version(redis, keys) == version, "an index at PostgreSQL's generation was rebuilt"


async def test_an_ingest_whose_redis_writes_fail_after_the_commit_says_so_and_the_healer_rebuilds(
    db: asyncpg.Connection, redis: aioredis.Redis, unreachable: aioredis.Redis, keys: Keys, settings: Settings,
    tmp_path: Path,
) -> None:
    await load_catalog(db, redis, keys, tmp_path)
    await build_index(db, redis, keys, grace_s=0)
    feed = write(tmp_path, "new.csv", NEW_OFFER)

    with pytest.raises(IndexWritesLost, match="nearcart index build") as lost:
        await ingest(db, unreachable, keys, "offers", feed)
    assert lost.value.changes == 1
    assert await db.fetchval("SELECT count(*) FROM offers WHERE gtin = $1", NEW_GTIN) == 1
    # Redis is back: the same feed again finds its row stored and writes nothing, so the index still lacks it.
    report = await ingest(db, redis, keys, "offers", feed)
    assert (report.rows_loaded, report.exit_code) == (0, 0)
    assert not (await near_paris(redis, keys, NEW_GTIN)).stores
    assert await index_behind(db, redis, keys) is not None

    version, _ = await heal(settings, keys)
    assert version is not None
    assert store_offers(await near_paris(redis, keys, NEW_GTIN)) == [("paris-1", 420, 7)]
    assert await index_behind(db, redis, keys) is None
    again, worker = await heal(settings, keys)
    assert again is None and not worker.rebuilt
    assert await live_version(redis, keys) == version


async def test_a_later_write_does_not_hide_a_loss_before_it(
    db: asyncpg.Connection, redis: aioredis.Redis, unreachable: aioredis.Redis, keys: Keys, settings: Settings,
    tmp_path: Path,
) -> None:
    # After a failover to a replica that missed a batch, the next ingest writes its own changes to the new
    # primary fine: were it to record its generation there, the missed batch would never be noticed.
    await load_catalog(db, redis, keys, tmp_path)
    await build_index(db, redis, keys, grace_s=0)
    with pytest.raises(IndexWritesLost):
        await ingest(db, unreachable, keys, "offers", write(tmp_path, "new.csv", NEW_OFFER))
    report = await ingest(db, redis, keys, "offers", write(tmp_path, "repriced.csv", REPRICED))
    assert report.rows_loaded == 1
    behind = await index_behind(db, redis, keys)
    assert behind is not None and behind[0] < behind[1]

    assert (await heal(settings, keys))[0] is not None
    assert store_offers(await near_paris(redis, keys, NEW_GTIN)) == [("paris-1", 420, 7)]
    assert ("paris-9", 250, 40) in store_offers(await near_paris(redis, keys, NUTELLA))


async def test_no_rebuild_while_a_writer_holds_the_lock_and_one_once_it_let_go_unrecorded(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, settings: Settings, tmp_path: Path
) -> None:
    await load_catalog(db, redis, keys, tmp_path)
    version = await build_index(db, redis, keys, grace_s=0)
    writer = await asyncpg.connect(settings.database_url)
    try:
        # An ingest between a batch's commit and the end of its run: PostgreSQL counted the batch, Redis not yet.
        async with index_writer_lock(writer):
            async with writer.transaction():
                await GenerationBumps().bump(writer, keys)
            assert await index_behind(db, redis, keys) is not None
            # A healer that waited for the lock would wait for as long as the writer works: here, for ever.
            built, worker = await asyncio.wait_for(heal(settings, keys), 10)
            assert built is None and not worker.rebuilt
            assert await live_version(redis, keys) == version
        # The writer went away without recording its generation (it died): now it is a loss.
        built, worker = await heal(settings, keys)
    finally:
        await writer.close()
    assert built is not None and built != version
    assert await index_behind(db, redis, keys) is None


async def test_an_index_ahead_of_postgresql_is_rebuilt_too(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, settings: Settings, tmp_path: Path
) -> None:
    # PostgreSQL restored from a backup (or its last asynchronous commits lost): the index holds changes the
    # catalog no longer has.
    await load_catalog(db, redis, keys, tmp_path)
    await build_index(db, redis, keys, grace_s=0)
    await redis.set(keys.generation, await catalog_generation(db, keys, OFFERS) + 3)
    assert (await heal(settings, keys))[0] is not None
    assert await index_behind(db, redis, keys) is None


async def test_a_directory_that_missed_a_retailer_change_is_copied_again(
    db: asyncpg.Connection, redis: aioredis.Redis, unreachable: aioredis.Redis, keys: Keys, settings: Settings,
    tmp_path: Path,
) -> None:
    await load_catalog(db, redis, keys, tmp_path)
    version = await build_index(db, redis, keys, grace_s=0)
    renamed = write(tmp_path, "renamed.csv", "retailer_id,name,logo_url,cart_url_template,delivery_countries\n"
                    "shopco,Shop Co Renamed,,https://shop.example/cart?add={gtin},FR\n")
    with pytest.raises(IndexWritesLost):
        await ingest(db, unreachable, keys, "retailers", renamed)
    names = {r.retailer_id: r.name for r in (await load_directory(redis, keys)).retailers.values()}
    assert names["shopco"] == "Shop Co"

    built, worker = await heal(settings, keys)
    assert built is None and len(worker.refreshed) == 1, "the offers were whole: only the directory is copied"
    names = {r.retailer_id: r.name for r in (await load_directory(redis, keys)).retailers.values()}
    assert names["shopco"] == "Shop Co Renamed"
    assert await live_version(redis, keys) == version


async def test_the_quality_checks_hide_and_show_move_the_generation_and_record_it(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path
) -> None:
    await load_catalog(db, redis, keys, tmp_path)
    await build_index(db, redis, keys, grace_s=0)
    before = await catalog_generation(db, keys, OFFERS)
    await db.execute("UPDATE retailers SET unconfirmed_offers = 'hide' WHERE retailer_id = 'bigbox'")
    verdicts = await apply_unconfirmed(db, redis, keys, 3600)
    assert verdicts.hidden > 0 and verdicts.flagged > 0
    assert await catalog_generation(db, keys, OFFERS) == before + 1
    assert await index_behind(db, redis, keys) is None
    assert await apply_unconfirmed(db, redis, keys, 3600) == (0, 0, 0)
    assert await catalog_generation(db, keys, OFFERS) == before + 1


async def test_a_profile_saved_while_redis_was_away_reaches_the_directory_by_itself(
    db: asyncpg.Connection, redis: aioredis.Redis, unreachable: aioredis.Redis, keys: Keys, settings: Settings,
    tmp_path: Path,
) -> None:
    await load_catalog(db, redis, keys, tmp_path)
    await build_index(db, redis, keys, grace_s=0)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        profile = Profile("bigbox", "Big Box Online", "", "https://bigbox.example/b/{gtin}", ("FR",))
        # The back office answers 503 (a RedisError), yet the profile is saved in PostgreSQL.
        with pytest.raises(RedisError):
            await save_profile(pool, unreachable, keys, profile, "admin@example.com")
    finally:
        await pool.close()
    assert await db.fetchval("SELECT name FROM retailers WHERE retailer_id = 'bigbox'") == "Big Box Online"

    _, worker = await heal(settings, keys)
    assert len(worker.refreshed) == 1
    names = {r.retailer_id: r.name for r in (await load_directory(redis, keys)).retailers.values()}
    assert names["bigbox"] == "Big Box Online"
