"""Writes the Redis geo index: incremental changes from feeds, and full rebuilds swapped in atomically.

A rebuild writes a new version's keys beside the live ones, then flips
`Keys.version` in one SET. Readers pick up the new number within their refresh
period; the old version stays readable for `grace_s` more seconds before it is
removed, so no query ever reads a half-built or deleted index.

Ingest and rebuild serialise on one PostgreSQL advisory lock: an offer applied
while a rebuild copies the catalog would otherwise land in the version that is
about to be dropped. A finished build leaves a completion marker beside the
pointer (cache/index_live.py): readers serve only a version that has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence

import asyncpg
import redis.asyncio as aioredis

from cache.directory import refresh_directory
from cache.index_generation import OFFERS, catalog_generation, index_behind
from cache.index_live import IndexMarker, encode_marker, live_index
from cache.index_types import OfferChange
from cache.keys import UNCONFIRMED_BIT, Keys, delivery_value, store_member

WRITER_LOCK = 0x6E6361_02
_BATCH = 10_000
_ANNOUNCED_PER_MESSAGE = 2_000
# All the replies to one write of index commands (up to _BATCH of them), normally a few ms.
_REPLIES_TIMEOUT_S = 30.0

__all__ = [
    "OfferWrites",
    "apply_offer_changes",
    "build_index",
    "index_writer_lock",
    "live_version",
    "refresh_directory",
    "reposition_store_offers",
]


@contextlib.asynccontextmanager
async def index_writer_lock(conn: asyncpg.Connection) -> AsyncIterator[None]:
    await conn.execute("SELECT pg_advisory_lock($1)", WRITER_LOCK)
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", WRITER_LOCK)


async def live_version(redis: aioredis.Redis, keys: Keys) -> int | None:
    raw = await redis.get(keys.version)
    return int(raw) if raw is not None else None


async def apply_offer_changes(redis: aioredis.Redis, keys: Keys, changes: Sequence[OfferChange]) -> None:
    """Bring the live index in line with changed offers; nothing to do before the first build."""
    writes = OfferWrites()
    for change in changes:
        if change.store_num is None:
            writes.delivery_offer(change.gtin, change.retailer_num, change.new)
        else:
            assert change.lon is not None and change.lat is not None
            writes.store_offer(change.gtin, change.store_num, change.lon, change.lat, change.old, change.new)
    await writes.apply(redis, keys)


# (price cents, currency, quantity, mode bits), as in OfferState; the bits may carry UNCONFIRMED_BIT
Offer = tuple[int, str, int, int]


class OfferWrites:
    """One batch of changed offers as index writes, grouped per GTIN.

    Commands are grouped per key (one ZREM, GEOADD, HDEL and HSET each): an offer appears once
    per batch, so removals then additions per key are equivalent to the per-offer order, and a
    million changes cost a few thousand commands instead of a million. Ingest fills it straight
    from the rows PostgreSQL returns, without an OfferChange per row.
    """

    __slots__ = ("removed", "added", "deleted", "stored", "gtins")

    def __init__(self) -> None:
        self.removed: defaultdict[str, list[str]] = defaultdict(list)
        self.added: defaultdict[str, list[object]] = defaultdict(list)
        self.deleted: defaultdict[str, list[int]] = defaultdict(list)
        self.stored: defaultdict[str, list[object]] = defaultdict(list)
        self.gtins: set[str] = set()

    def store_offer(
        self, gtin: str, store_num: int, lon: float | str, lat: float | str, old: Offer | None, new: Offer,
        old_flagged: bool = True,
    ) -> None:
        """A store offer changed. Coordinates may come as text, exactly as the float would be sent:
        a store's offers repeat its coordinates, so the caller formats them once per store.

        `old_flagged`: the index may hold the old offer flagged unconfirmed (cache/unconfirmed.py), so
        its member goes in both forms. A feed's writer cannot tell which form is there; it passes False
        only for a retailer none of whose offers are flagged, sparing a member per changed offer.
        """
        self.gtins.add(gtin)
        member = store_member(store_num, *new)
        in_stock = new[2] > 0
        if old is not None:
            removed = self.removed[gtin]
            old_member = store_member(store_num, *old)
            if old_member != member or not in_stock:
                removed.append(old_member)
            if old_flagged:
                other = store_member(store_num, old[0], old[1], old[2], old[3] ^ UNCONFIRMED_BIT)
                if other != member or not in_stock:
                    removed.append(other)
        if in_stock:
            self.added[gtin] += (lon, lat, member)

    def delivery_offer(self, gtin: str, retailer_num: int, new: Offer) -> None:
        self.gtins.add(gtin)
        if new[2] > 0:
            self.stored[gtin] += (retailer_num, delivery_value(*new))
        else:
            self.deleted[gtin].append(retailer_num)

    async def apply(self, redis: aioredis.Redis, keys: Keys) -> None:
        """Write the batch to the live index and announce its GTINs; nothing to do before the first build."""
        version = await live_version(redis, keys)
        if version is None or not self.gtins:
            return
        commands: list[tuple[object, ...]] = []
        for command, groups, key_of in (
            ("ZREM", self.removed, keys.store_offers), ("GEOADD", self.added, keys.store_offers),
            ("HDEL", self.deleted, keys.delivery_offers), ("HSET", self.stored, keys.delivery_offers),
        ):
            for gtin, args in groups.items():
                commands.append((command, key_of(version, gtin), *args))
                if len(commands) >= _BATCH:
                    await _send(redis, commands)
                    commands = []
        if commands:
            await _send(redis, commands)
        await announce_changes(redis, keys, self.gtins)


async def _send(redis: aioredis.Redis, commands: list[tuple[object, ...]]) -> None:
    """Send `commands` in one write on one pooled connection, read their replies, raise the first error.

    A redis-py pipeline reads each reply through several layers and under its own timeout: for the
    thousands of commands of an ingest batch that cost more CPU than building them. One timeout covers
    all the replies here. Any error leaves replies unread, so the connection is dropped, not reused.
    """
    pool = redis.connection_pool
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        await connection.send_packed_command(connection.pack_commands(commands))
        async with asyncio.timeout(_REPLIES_TIMEOUT_S):
            for _ in commands:
                # A reply that is an error raises ResponseError here.
                await connection.read_response(timeout=math.inf)
    except BaseException:
        await connection.disconnect()
        raise
    finally:
        await pool.release(connection)


async def announce_changes(redis: aioredis.Redis, keys: Keys, gtins: set[str]) -> None:
    """Tell edge workers which GTINs changed, so they drop cached answers at once (after the writes)."""
    ordered = sorted(gtins)
    pipe = redis.pipeline(transaction=False)
    for start in range(0, len(ordered), _ANNOUNCED_PER_MESSAGE):
        pipe.publish(keys.changes, " ".join(ordered[start:start + _ANNOUNCED_PER_MESSAGE]))
    await pipe.execute()


async def reposition_store_offers(
    conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, store_nums: Sequence[int]
) -> None:
    """Move a relocated store's offers to its new coordinates (members are unchanged, scores move)."""
    version = await live_version(redis, keys)
    if version is None or not store_nums:
        return
    rows = await conn.fetch(
        _OFFER_ROWS + " AND s.num = ANY($1::int[])",
        list(store_nums),
    )
    pipe = redis.pipeline(transaction=False)
    for row in rows:
        key = keys.store_offers(version, row["gtin"])
        offer = (row["s_num"], row["cents"], row["currency"], row["quantity"])
        # The member as the catalog says the index holds it; the other form, should a feed have
        # confirmed the offer since the quality check flagged it, goes (cache/unconfirmed.py).
        pipe.execute_command("ZREM", key, store_member(*offer, row["modes"] ^ UNCONFIRMED_BIT))
        pipe.execute_command("GEOADD", key, row["lon"], row["lat"], store_member(*offer, row["modes"]))
    await pipe.execute()
    await announce_changes(redis, keys, {row["gtin"] for row in rows})


# Every in-stock offer the index holds, as it holds it. Offers the quality check found unconfirmed
# (cache/unconfirmed.py) keep its verdict until their feed updates them: hidden ones stay out, the
# others carry UNCONFIRMED_BIT among their mode bits.
_OFFER_ROWS = (
    "SELECT o.gtin, r.num AS r_num, s.num AS s_num, s.lat, s.lon, (o.price * 100)::bigint AS cents,"
    " o.currency, o.quantity,"
    f" o.modes::int | CASE WHEN u.hidden IS NULL THEN 0 ELSE {UNCONFIRMED_BIT} END AS modes"
    " FROM offers o JOIN retailers r ON r.retailer_id = o.retailer_id"
    " LEFT JOIN stores s ON s.retailer_id = o.retailer_id AND s.store_id = o.store_id"
    " LEFT JOIN offers_unconfirmed u ON u.retailer_id = o.retailer_id AND u.store_id = o.store_id"
    " AND u.gtin = o.gtin AND u.updated_at = o.updated_at"
    " WHERE o.quantity > 0 AND (o.store_id = '' OR s.num IS NOT NULL) AND u.hidden IS NOT TRUE"
)


async def build_index(
    conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, grace_s: float = 3.0, *,
    unless_live: bool = False, batch: int = _BATCH,
) -> int:
    """Rebuild every offer key from PostgreSQL under a new version, swap it in, drop older versions.

    Returns the new live version. `unless_live` (the self-healing path) builds nothing when a whole
    index is live and at PostgreSQL's write generation by the time the writer lock is ours: another
    worker or an SRE just built one. `batch` rows are written per round trip: smaller batches hold
    the event loop for less at a time.
    """
    async with index_writer_lock(conn):
        if unless_live:
            found = await live_index(redis, keys)
            if found is not None and await index_behind(conn, redis, keys) is None:
                return found.version
        # Every writer that bumps it holds this lock: the rows below are exactly this generation's.
        generation = await catalog_generation(conn, keys, OFFERS)
        version = int(await redis.incr(keys.seq))
        gtins, store_offers, delivery_offers = await _write_version(conn, redis, keys, version, batch)
        await refresh_directory(conn, redis, keys)
        previous = await live_version(redis, keys)
        marker = IndexMarker(version, gtins, store_offers, delivery_offers, time.time())
        swap = redis.pipeline(transaction=False)
        # The marker before the pointer: a reader that sees the pointer finds the marker too.
        swap.set(keys.complete(version), encode_marker(marker))
        swap.set(keys.version, version)
        # After the pointer (a pipeline runs in order): a swap cut short never credits the old version.
        swap.set(keys.generation, generation)
        swap.publish(keys.channel, version)
        await swap.execute()
    if previous is not None:
        # Readers that fetched the old number a moment ago may still be using it.
        await asyncio.sleep(grace_s)
        await drop_versions_below(redis, keys, version)
    return version


async def _write_version(
    conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, version: int, batch: int
) -> tuple[int, int, int]:
    """Write every in-stock offer under `version`; (GTINs, store offers, delivery offers) written."""
    # Rows come ordered by GTIN, so consecutive store offers of one GTIN share one GEOADD.
    pipe = redis.pipeline(transaction=False)
    pending = 0
    geo_key = ""
    geo_args: list[object] = []
    last_gtin = ""
    gtins = store_offers = delivery_offers = 0

    def flush_geo() -> None:
        nonlocal geo_args
        if geo_args:
            pipe.execute_command("GEOADD", geo_key, *geo_args)
            geo_args = []

    async with conn.transaction():
        async for row in conn.cursor(_OFFER_ROWS + " ORDER BY o.gtin", prefetch=batch):
            gtin = row["gtin"]
            if gtin != last_gtin:
                gtins += 1
                last_gtin = gtin
            if row["s_num"] is None:
                delivery_offers += 1
                pipe.execute_command(
                    "HSET", keys.delivery_offers(version, gtin), row["r_num"],
                    delivery_value(row["cents"], row["currency"], row["quantity"], row["modes"]),
                )
            else:
                store_offers += 1
                key = keys.store_offers(version, gtin)
                if key != geo_key or len(geo_args) >= 3 * 1000:
                    flush_geo()
                    geo_key = key
                geo_args += (
                    row["lon"], row["lat"],
                    store_member(row["s_num"], row["cents"], row["currency"], row["quantity"], row["modes"]),
                )
            pending += 1
            if pending >= batch:
                flush_geo()
                await pipe.execute()
                pending = 0
        flush_geo()
        await pipe.execute()
    return gtins, store_offers, delivery_offers


async def drop_versions_below(redis: aioredis.Redis, keys: Keys, version: int) -> int:
    """Delete offer keys of versions older than `version` (old builds, or builds that crashed half-way)."""
    dropped = 0
    batch: list[bytes] = []
    prefix = keys.prefix.encode() + b"i"
    async for key in redis.scan_iter(match=keys.prefix + "i*:{*}:*", count=5000):
        head = key[len(prefix):].split(b":", 1)[0]
        if head.isdigit() and int(head) < version:
            batch.append(key)
            if len(batch) >= 1000:
                dropped += await redis.unlink(*batch)
                batch = []
    if batch:
        dropped += await redis.unlink(*batch)
    markers = keys.complete(0)[:-1].encode()
    async for key in redis.scan_iter(match=keys.complete(0)[:-1] + "*", count=1000):
        tail = key[len(markers):]
        if tail.isdigit() and int(tail) < version:
            dropped += await redis.unlink(key)
    return int(dropped)
