"""The store and retailer directory every edge worker keeps in memory.

Index members carry only a store number; a query turns it into a name, an address
and a basket URL template through this directory. PostgreSQL is the source; Redis
holds a msgpack copy (`Keys.stores`, `Keys.retailers`) that workers load when
`Keys.directory_version` moves.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
import redis.asyncio as aioredis

from cache.index_generation import DIRECTORY, catalog_generation
from cache.keys import Keys


class StoreEntry(msgspec.Struct, array_like=True, frozen=True, gc=False):
    num: int
    retailer_num: int
    store_id: str
    name: str
    address: str
    postal_code: str
    city: str
    country: str
    lat: float
    lon: float
    # Placed at its postal code's centre (its feed gave no coordinates): the answer says so.
    approximate: bool = False


# gc=False: directory entries hold no reference cycles, and per-worker caches keep many tuples that
# point at them; untracked, those tuples are never walked by the collector's full scans.
class RetailerEntry(msgspec.Struct, array_like=True, frozen=True, gc=False):
    num: int
    retailer_id: str
    name: str
    logo_url: str
    cart_url_template: str
    delivery_countries: tuple[str, ...]
    # GeoJSON as retailers sent it, or None: delivery is then by country only.
    delivery_zones: Any = None


_encode = msgspec.msgpack.Encoder().encode
_store_decoder = msgspec.msgpack.Decoder(StoreEntry)
_retailer_decoder = msgspec.msgpack.Decoder(RetailerEntry)
_BATCH = 5000


class Directory:
    """Stores by number, retailers by number and by id."""

    def __init__(self, stores: dict[int, StoreEntry], retailers: dict[int, RetailerEntry], version: int = 0) -> None:
        self.stores = stores
        self.retailers = retailers
        self.retailers_by_id = {r.retailer_id: r for r in retailers.values()}
        self.version = version

    @classmethod
    def empty(cls) -> Directory:
        return cls({}, {}, 0)


async def load_directory(redis: aioredis.Redis, keys: Keys) -> Directory:
    pipe = redis.pipeline(transaction=True)
    pipe.get(keys.directory_version)
    pipe.hgetall(keys.stores)
    pipe.hgetall(keys.retailers)
    version, stores_raw, retailers_raw = await pipe.execute()
    stores = {int(k): _store_decoder.decode(v) for k, v in stores_raw.items()}
    retailers = {int(k): _retailer_decoder.decode(v) for k, v in retailers_raw.items()}
    return Directory(stores, retailers, int(version or 0))


async def refresh_directory(conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys) -> None:
    """Copy retailers and stores from PostgreSQL to Redis; readers see the old or the new copy, never a mix.

    The copy is credited with the catalog's directory generation read before it (cache/index_generation.py):
    the copy holds at least every change counted up to there, so the index healer never mistakes it for current
    when a change slipped in after.
    """
    generation = await catalog_generation(conn, keys, DIRECTORY)
    next_stores, next_retailers = keys.staging(keys.stores), keys.staging(keys.retailers)
    await redis.unlink(next_stores, next_retailers)
    retailer_rows = await conn.fetch(
        "SELECT num, retailer_id, name, logo_url, cart_url_template, delivery_countries, delivery_zones::text AS zones"
        " FROM retailers"
    )
    pipe = redis.pipeline(transaction=False)
    for row in retailer_rows:
        entry = RetailerEntry(
            row["num"], row["retailer_id"], row["name"], row["logo_url"], row["cart_url_template"],
            tuple(row["delivery_countries"]), msgspec.json.decode(row["zones"]) if row["zones"] else None,
        )
        pipe.hset(next_retailers, str(row["num"]), _encode(entry))
    await pipe.execute()
    async with conn.transaction():
        pending = 0
        async for row in conn.cursor(
            "SELECT num, r_num, store_id, name, address, postal_code, city, country, lat, lon, approximate FROM ("
            " SELECT s.*, r.num AS r_num FROM stores s JOIN retailers r USING (retailer_id)) t",
            prefetch=_BATCH,
        ):
            store = StoreEntry(
                row["num"], row["r_num"], row["store_id"], row["name"], row["address"], row["postal_code"],
                row["city"], row["country"].strip(), row["lat"], row["lon"], row["approximate"],
            )
            pipe.hset(next_stores, str(row["num"]), _encode(store))
            pending += 1
            if pending >= _BATCH:
                await pipe.execute()
                pending = 0
        await pipe.execute()
    # RENAME fails on a missing source (an empty catalog), hence the script: an empty staged hash empties the live one.
    swap = redis.pipeline(transaction=True)
    for staged, live in ((next_stores, keys.stores), (next_retailers, keys.retailers)):
        swap.unlink(live)
        swap.eval(_RENAME_IF_EXISTS, 2, staged, live)
    swap.eval(_BUMP_VERSION, 1, keys.directory_version)
    swap.set(keys.directory_generation, generation)
    await swap.execute()


_RENAME_IF_EXISTS = "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('RENAME', KEYS[1], KEYS[2]) end return 1"
# INCR, except that a missing counter (a new Redis, or one restarted empty) starts from the clock in
# ms: counting from 1 again would repeat a number workers saw before the restart, and what they cached
# under it would look current again (issue 14, finding 5). Fewer than 1000 refreshes a second never
# catch up with the clock.
_BUMP_VERSION = """
local v = redis.call('INCR', KEYS[1])
if v == 1 then
  local t = redis.call('TIME')
  v = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('SET', KEYS[1], string.format('%.0f', v))
end
return v
"""
