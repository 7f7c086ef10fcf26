"""The index knows when it is whole, and one worker rebuilds it when it is not (issue 14, finding 4)."""

from __future__ import annotations

import asyncio

import asyncpg
import redis.asyncio as aioredis

from cache.directory import load_directory
from cache.index import build_index
from cache.index_healer import IndexHealer
from cache.index_live import live_index
from cache.keys import Keys
from edge_api.settings import Settings
from tests.random_catalog import write_random_catalog


async def forget_everything(redis: aioredis.Redis, keys: Keys) -> None:
    """What a Redis restarted empty looks like to this test's prefix (the shared server is never flushed)."""
    async for key in redis.scan_iter(match=keys.prefix + "*", count=1000):
        await redis.unlink(key)


def healer(settings: Settings, keys: Keys) -> IndexHealer:
    return IndexHealer(settings.redis_url, settings.database_url, keys, grace_s=0)


async def test_a_build_marks_its_version_whole_with_what_it_holds(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys
) -> None:
    catalog = await write_random_catalog(db, seed=5, stores=40, gtins=4)
    version = await build_index(db, redis, keys, grace_s=0)
    marker = await live_index(redis, keys)
    in_stock = [offer for offer in catalog.offers if offer.quantity > 0]
    assert marker is not None and marker.version == version
    assert marker.store_offers == sum(1 for offer in in_stock if offer.store_id)
    assert marker.delivery_offers == sum(1 for offer in in_stock if not offer.store_id)
    assert marker.gtins == len({offer.gtin for offer in in_stock})


async def test_a_version_without_its_marker_is_not_live(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys
) -> None:
    await write_random_catalog(db, seed=5, stores=10, gtins=1)
    version = await build_index(db, redis, keys, grace_s=0)
    await redis.unlink(keys.complete(version))
    assert await live_index(redis, keys) is None


async def test_an_older_build_leaves_with_its_marker(db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys) -> None:
    await write_random_catalog(db, seed=5, stores=10, gtins=1)
    first = await build_index(db, redis, keys, grace_s=0)
    second = await build_index(db, redis, keys, grace_s=0)
    assert await redis.exists(keys.complete(first)) == 0
    assert await redis.exists(keys.complete(second)) == 1


async def test_an_index_lost_with_redis_is_rebuilt_by_exactly_one_worker(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, settings: Settings
) -> None:
    await write_random_catalog(db, seed=6, stores=60, gtins=3)
    await build_index(db, redis, keys, grace_s=0)
    before = await live_index(redis, keys)
    await forget_everything(redis, keys)
    assert await live_index(redis, keys) is None

    workers = [healer(settings, keys) for _ in range(4)]
    try:
        built = await asyncio.gather(*(worker.heal_once() for worker in workers))
    finally:
        for worker in workers:
            await worker.stop()
    assert sum(1 for version in built if version is not None) == 1
    after = await live_index(redis, keys)
    assert before is not None and after is not None
    assert (after.gtins, after.store_offers, after.delivery_offers) == (
        before.gtins, before.store_offers, before.delivery_offers)
    # Released: the next loss can be healed at once.
    assert await redis.exists(keys.rebuild_lock) == 0


async def test_a_whole_index_is_left_alone(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, settings: Settings
) -> None:
    await write_random_catalog(db, seed=6, stores=10, gtins=1)
    version = await build_index(db, redis, keys, grace_s=0)
    worker = healer(settings, keys)
    try:
        assert await worker.heal_once() is None
    finally:
        await worker.stop()
    assert await redis.get(keys.version) == str(version).encode()


async def test_no_rebuild_while_another_worker_holds_the_lock(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, settings: Settings
) -> None:
    await write_random_catalog(db, seed=6, stores=10, gtins=1)
    await redis.set(keys.rebuild_lock, "someone-else", px=10_000)
    worker = healer(settings, keys)
    try:
        assert await worker.heal_once() is None
    finally:
        await worker.stop()
    assert await live_index(redis, keys) is None
    assert await redis.get(keys.rebuild_lock) == b"someone-else"


async def test_the_watch_rebuilds_without_anyone_asking(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, settings: Settings
) -> None:
    await write_random_catalog(db, seed=6, stores=10, gtins=1)
    worker = IndexHealer(settings.redis_url, settings.database_url, keys, check_s=0.1, grace_s=0)
    worker.start()
    try:
        for _ in range(200):
            if worker.rebuilt:
                break
            await asyncio.sleep(0.05)
    finally:
        await worker.stop()
    marker = await live_index(redis, keys)
    assert marker is not None and [version for version, _ in worker.rebuilt] == [marker.version]


async def test_directory_numbers_do_not_repeat_after_redis_restarted_empty(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys
) -> None:
    # Workers keep answers under (index version, directory version): a rebuilt index must not reuse both.
    await write_random_catalog(db, seed=6, stores=10, gtins=1)
    await build_index(db, redis, keys, grace_s=0)
    before = (await load_directory(redis, keys)).version
    await forget_everything(redis, keys)
    await build_index(db, redis, keys, grace_s=0)
    after = (await load_directory(redis, keys)).version
    assert after > before
    await build_index(db, redis, keys, grace_s=0)
    assert (await load_directory(redis, keys)).version == after + 1
