"""Turns the event stream into statistics (`stats_daily` and its roll-ups), each entry counted exactly once.

A Redis consumer group hands each entry to one consumer, so every edge worker (or the
dedicated `nearcart events aggregate` process) can run `aggregate_forever` side by side.
Redis alone gives at-least-once: a crash between the PostgreSQL commit and the XACK, or an
entry claimed by a second aggregator (XAUTOCLAIM) while the first is still busy with it,
would count it twice. So the ids of the entries counted are written to
`stats_entries_counted` in the SAME transaction as their counts: an entry whose id is
already there counts nothing. XACK and XDEL follow the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from backoffice.stats import SCOPES, scope_value
from cache.db import DATABASE_UNAVAILABLE
from cache.gtin import GtinError, normalize_gtin
from cache.keys import MODE_NAMES, Keys
from cache.redis_topology import primary_client
from edge_api.settings import Settings

log = logging.getLogger("nearcart.events")
GROUP = "event-counts"
RETENTION = "13 months"
# An entry delivered to another consumer and not acknowledged for this long is taken over
# (its consumer died, or is stuck): counting it again is harmless, see the module docstring.
CLAIM_IDLE_MS = 60_000
# Counted ids are kept this long at least: an aggregator may still hold a copy claimed earlier.
PRUNE_AFTER = "10 minutes"
BATCH = 1000
# Rows of stats_entries_counted for event ids (not stream ids) have this after the stream's key.
EID_SUFFIX = "#eid"
# A copy of an event arrives within its worker's retries: a day of eids is plenty. (A worker that kept
# an event through a day-long outage after a lost reply would have it counted twice: said, not solved.)
EID_KEPT = "1 day"
EID_KEPT_MS = 24 * 3600 * 1000
# Old figures go once a day (a scan of the whole table), counted ids every few minutes (a small table).
EXPIRE_EVERY_S = 24 * 3600
PRUNE_EVERY_S = 300

METRICS = ("loads", "opens", "searches", "searches_with_offers", "offers_shown", "clicks", "intent_cents")
# day, campaign, gtin, retailer, mode, region, currency: the finest statistics ever get.
FactKey = tuple[date, str, str, str, str, str, str]
# grain ("d"/"m"), dimension ("a", "p", "r", "o", "g"), period start, campaign, value, currency: the
# roll-up's primary key order, so rows sort (and lock) in the order of its index.
RollupKey = tuple[str, str, date, str, str, str]
# scope (one of backoffice.stats.SCOPES), scope value, then a RollupKey: `stats_rollup_within`'s primary key order.
WithinKey = tuple[str, str, str, str, date, str, str, str]
Figures = list[int]
Checkpoint = Callable[[str], Awaitable[None]]
Entry = tuple[bytes, dict[bytes, bytes] | None]

_shown_decoder = msgspec.json.Decoder(list[tuple[str, str, int]])
_MODES = frozenset(MODE_NAMES)


def _figures(**named: int) -> Figures:
    return [named.get(name, 0) for name in METRICS]


def entry_figures(fields: dict[bytes, bytes] | None) -> list[tuple[FactKey, Figures]]:
    """What one stream entry adds to `stats_daily`: nothing for a malformed or uncounted one."""
    if not fields:
        return []
    text = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}
    try:
        day = datetime.fromtimestamp(int(text["ts"]) / 1000, tz=UTC).date()
        gtin = normalize_gtin(text["gtin"])
    except (KeyError, ValueError, OverflowError, OSError, GtinError):
        return []
    campaign, region, kind = text.get("campaign", "")[:64], text.get("region", "")[:8], text.get("kind", "")

    def key(retailer: str = "", mode: str = "", currency: str = "") -> FactKey:
        return (day, campaign, gtin, retailer[:64], mode, region, currency)

    if kind == "impression":
        return [(key(), _figures(loads=1))]
    if kind == "open":
        return [(key(), _figures(opens=1))]
    if kind == "search":
        try:
            shown = _shown_decoder.decode(text.get("shown", "[]"))
        except msgspec.DecodeError:
            return []
        groups = [(retailer, mode, count) for retailer, mode, count in shown if mode in _MODES and 0 < count <= 1000]
        found = [(key(), _figures(searches=1, searches_with_offers=1 if groups else 0))]
        return found + [(key(retailer, mode), _figures(offers_shown=count)) for retailer, mode, count in groups]
    if kind == "click":
        mode = text.get("mode", "")
        currency = text.get("currency", "")
        cents = int(text["price_cents"]) if text.get("price_cents", "").isdigit() else -1
        if len(currency) != 3 or not currency.isalpha() or cents < 0:
            currency, cents = "", 0  # a link signed before prices rode in tokens: a click without a value
        return [(key(text.get("retailer", ""), mode if mode in _MODES else "", currency),
                 _figures(clicks=1, intent_cents=cents))]
    return []  # errors, and beacons older widgets send that the server counts itself


def _dimensions(gtin: str, retailer: str, mode: str, region: str, scope: str = "") -> list[tuple[str, str]]:
    """(dimension, value) of one fact's roll-up rows; within a scope, its own dimensions are its total ("a")."""
    along = [("a", ""), ("p", gtin), ("r", retailer), ("o", mode), ("g", region)]
    own = SCOPES.get(scope, "")
    # Loads, opens and searches have no retailer or mode.
    return [(dim, value) for dim, value in along if dim not in own and (value or dim not in "ro")]


def rollups(facts: dict[FactKey, Figures]) -> dict[RollupKey, Figures]:
    """The roll-up rows these fact deltas move (see the 0005 migration for their layout)."""
    found: dict[RollupKey, Figures] = {}
    for (day, campaign, gtin, retailer, mode, region, currency), figures in facts.items():
        for grain, period in (("d", day), ("m", day.replace(day=1))):
            for dim, value in _dimensions(gtin, retailer, mode, region):
                _add(found, (grain, dim, period, campaign, value, currency), figures)
    return found


def rollups_within(facts: dict[FactKey, Figures]) -> dict[WithinKey, Figures]:
    """The rows of `stats_rollup_within` (migrations 0009, 0012) these fact deltas move: `rollups`
    within each scope of `backoffice.stats.SCOPES` the fact belongs to."""
    found: dict[WithinKey, Figures] = {}
    for (day, campaign, gtin, retailer, mode, region, currency), figures in facts.items():
        scopes = [("r", retailer), ("g", region), ("o", mode)]
        if mode and retailer:
            scopes.append(("R", scope_value("R", mode, retailer)))
        for scope, scope_value_ in scopes:
            if not scope_value_:
                continue  # no filter asks for an empty retailer, region or mode
            for grain, period in (("d", day), ("m", day.replace(day=1))):
                for dim, value in _dimensions(gtin, retailer, mode, region, scope):
                    _add(found, (scope, scope_value_, grain, dim, period, campaign, value, currency), figures)
    return found


def _add(into: dict[Any, Figures], key: Any, figures: Figures) -> None:
    total = into.setdefault(key, [0] * len(METRICS))
    for i, n in enumerate(figures):
        total[i] += n


_SET_SUMS = ", ".join(f"{m} = {{table}}.{m} + EXCLUDED.{m}" for m in METRICS)
_FACT_UPSERT = (
    "INSERT INTO stats_daily (day, campaign, gtin, retailer_id, mode, region, currency, " + ", ".join(METRICS) + ")"
    " SELECT * FROM unnest($1::date[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
    " $8::int[], $9::int[], $10::int[], $11::int[], $12::int[], $13::int[], $14::bigint[])"
    " ON CONFLICT (campaign, day, gtin, retailer_id, mode, region, currency) DO UPDATE SET "
    + _SET_SUMS.format(table="stats_daily")
)


def _rollup_upsert(table: str, scoped: bool) -> str:
    """Add figures to roll-up rows given as arrays, one per key column in primary key order, then metrics."""
    key = [("scope", '"char"'), ("scope_value", "text")] if scoped else []
    key += [("grain", '"char"'), ("dim", '"char"'), ("period", "date"), ("campaign", "text"), ("value", "text"),
            ("currency", "text")]
    names = [name for name, _ in key] + list(METRICS)
    arrays = [("date" if kind == "date" else "text") for _, kind in key] + ["bigint"] * len(METRICS)
    return (
        f"INSERT INTO {table} ({', '.join(names)}) SELECT "
        + ", ".join(f"{name}::{kind}" for name, kind in key) + ", " + ", ".join(METRICS)
        + " FROM unnest(" + ", ".join(f"${i}::{kind}[]" for i, kind in enumerate(arrays, 1)) + ")"
        + f" AS u ({', '.join(names)}) ON CONFLICT ({', '.join(name for name, _ in key)}) DO UPDATE SET "
        + _SET_SUMS.format(table=table)
    )


_ROLLUP_UPSERT = _rollup_upsert("stats_rollup", scoped=False)
_WITHIN_UPSERT = _rollup_upsert("stats_rollup_within", scoped=True)


def _columns(rows: Iterable[tuple[Any, Figures]]) -> list[list[Any]]:
    # Sorted: concurrent aggregators then lock rows in the same order and never deadlock.
    flat = [(*key, *figures) for key, figures in sorted(rows, key=lambda row: row[0])]
    return [list(column) for column in zip(*flat, strict=True)]


async def add_figures(conn: asyncpg.Connection, facts: dict[FactKey, Figures]) -> None:
    """Add fact deltas to `stats_daily` and its roll-ups (inside the caller's transaction)."""
    for statement, rows in ((_FACT_UPSERT, facts), (_ROLLUP_UPSERT, rollups(facts)),
                            (_WITHIN_UPSERT, rollups_within(facts))):
        # A batch may move no row of a table: opens from an unlocated shopper have neither retailer nor
        # region, so nothing within either. Sent without its arrays the statement would fail, and the
        # batch with it at every retry: the aggregator would stop counting for good.
        if rows:
            await conn.execute(statement, *_columns(rows.items()), timeout=30)


def _entry_id(raw: bytes) -> tuple[int, int]:
    ms, _, seq = raw.decode().partition("-")
    return int(ms), int(seq)


def _once_key(keys: Keys, entry: Entry) -> tuple[str, int, int]:
    """What makes an entry count once: the event id its worker gave it, else its stream id.

    An event may reach the stream more than once under different stream ids (a write whose reply
    was lost is made again, see edge_api.event_buffer); its `eid` is then the same. An eid is
    `<ms>-<63 random bits>`, kept as (ms, seq) like a stream id; an older 16-hex-digit eid is a
    signed bigint in ms.
    """
    fields = entry[1] or {}
    eid = fields.get(b"eid", b"")
    try:
        if b"-" in eid:
            ms, _, seq = eid.partition(b"-")
            return keys.events + EID_SUFFIX, int(ms), int(seq)
        if len(eid) == 16:
            return keys.events + EID_SUFFIX, int(eid, 16) - 2**63, 0
    except ValueError:
        pass
    return (keys.events, *_entry_id(entry[0]))


async def _read_batch(redis: aioredis.Redis, keys: Keys, consumer: str, batch: int, claim_idle_ms: int) -> list[Entry]:
    """Our own pending entries (a previous run died before XACK), then stale ones of others, then new ones."""
    # RESP2 shape: [[stream, [(id, fields), ...]]]; redis-py types cover RESP3 too, hence Any.
    read: Any = await redis.xreadgroup(GROUP, consumer, {keys.events: "0"}, count=batch)
    if read and read[0][1]:
        return list(read[0][1])
    claimed: Any = await redis.xautoclaim(keys.events, GROUP, consumer, claim_idle_ms, "0-0", count=batch)
    if claimed[1]:
        return list(claimed[1])
    read = await redis.xreadgroup(GROUP, consumer, {keys.events: ">"}, count=batch)
    return list(read[0][1]) if read else []


async def _nothing(point: str) -> None:
    return None


async def aggregate_once(
    redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool, consumer: str = "", batch: int = BATCH,
    claim_idle_ms: int = CLAIM_IDLE_MS, checkpoint: Checkpoint = _nothing,
) -> int:
    """Count one batch of entries, each at most once ever, then drop them from the stream; return how many.

    `checkpoint` is awaited at "read", "counted" (inside the transaction, before COMMIT) and
    "committed" (before XACK): tests crash or pause an aggregator there.
    """
    consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
    with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
        await redis.xgroup_create(keys.events, GROUP, id="0", mkstream=True)
    entries = await _read_batch(redis, keys, consumer, batch, claim_idle_ms)
    if not entries:
        return 0
    await checkpoint("read")
    once = [_once_key(keys, entry) for entry in entries]
    ids = sorted(set(once))  # one order for every aggregator: no deadlock between them
    async with pool.acquire() as conn, conn.transaction():
        fresh = await conn.fetch(
            "INSERT INTO stats_entries_counted (stream, ms, seq)"
            " SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])"
            " ON CONFLICT DO NOTHING RETURNING stream, ms, seq",
            *(list(column) for column in zip(*ids, strict=True)), timeout=30,
        )
        new = {(row["stream"], row["ms"], row["seq"]) for row in fresh}
        facts: dict[FactKey, Figures] = {}
        for key_once, (_, fields) in zip(once, entries, strict=True):
            if key_once in new:
                new.discard(key_once)  # the same eid twice in one batch counts once too
                for key, figures in entry_figures(fields):
                    _add(facts, key, figures)
        await add_figures(conn, facts)
        await checkpoint("counted")
    await checkpoint("committed")
    raw_ids = [entry_id for entry_id, _ in entries]
    # One MULTI: an entry acknowledged but left in the stream would hold back pruning for good.
    pipe = redis.pipeline(transaction=True)
    pipe.xack(keys.events, GROUP, *raw_ids)
    pipe.xdel(keys.events, *raw_ids)
    await pipe.execute()
    return len(entries)


async def prune_counted_ids(redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool) -> int:
    """Forget counted ids older than every entry still in the stream: those can never come back."""
    oldest: Any = await redis.xrange(keys.events, count=1)
    ms, seq = _entry_id(oldest[0][0]) if oldest else (2**62, 0)
    status = await pool.execute(
        "DELETE FROM stats_entries_counted WHERE stream = $1 AND (ms, seq) < ($2, $3)"
        f" AND counted_at < now() - interval '{PRUNE_AFTER}'",
        keys.events, ms, seq, timeout=30,
    )
    # Event ids hold their first write's time: a range of the primary key, never a scan of the table.
    # (An eid of the older random kind has any ms: outside today's range too, it goes a day after its count.)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    eids = await pool.execute(
        "DELETE FROM stats_entries_counted WHERE stream = $1 AND (ms < $2 OR ms > $3)"
        f" AND counted_at < now() - interval '{EID_KEPT}'",
        keys.events + EID_SUFFIX, now_ms - EID_KEPT_MS, now_ms + EID_KEPT_MS, timeout=30,
    )
    return int(status.split()[-1]) + int(eids.split()[-1])


async def delete_expired(pool: asyncpg.Pool) -> int:
    """SPEC "Privacy": statistics older than 13 months are deleted (roll-ups too); how many daily rows."""
    async with pool.acquire() as conn, conn.transaction():
        status = await conn.execute(
            f"DELETE FROM stats_daily WHERE day < current_date - interval '{RETENTION}'", timeout=300
        )
        for table in ("stats_rollup", "stats_rollup_within"):
            await conn.execute(
                f"DELETE FROM {table} WHERE (grain = 'd' AND period < current_date - interval '13 months')"
                " OR (grain = 'm' AND period < date_trunc('month', current_date - interval '13 months'))",
                timeout=300,
            )
    return int(status.split()[-1])


async def aggregate_forever(
    redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool, idle_s: float = 5.0, stop: asyncio.Event | None = None,
) -> None:
    """Drain the stream until `stop` is set (or forever); delete old figures daily and counted ids often.

    A batch under way when `stop` is set is finished first: stopping never leaves work half done.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    last_expiry = last_prune = -float("inf")
    while not stop.is_set():
        try:
            if loop.time() - last_expiry > EXPIRE_EVERY_S:
                await delete_expired(pool)
                last_expiry = loop.time()
            if loop.time() - last_prune > PRUNE_EVERY_S:
                await prune_counted_ids(redis, keys, pool)
                last_prune = loop.time()
            if await aggregate_once(redis, keys, pool) > 0:
                continue
        except (RedisError, *DATABASE_UNAVAILABLE) as exc:
            log.warning("event aggregation paused: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), idle_s)


async def run_aggregator(settings: Settings) -> None:
    """`nearcart events aggregate`: the aggregator as a process of its own, until SIGTERM or SIGINT.

    On a signal the batch under way is finished (its commit and XACK), then the process exits 0.
    """
    import signal

    from cache import db as catalog_db

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    keys = Keys(settings.redis_prefix)
    pool = await catalog_db.create_pool(settings.database_url, min_size=0, max_size=2)
    log.info("aggregating %s into PostgreSQL", keys.events)
    try:
        # Through Sentinel when configured: after a failover the next batch is read from the new primary.
        async with primary_client(settings, socket_timeout=30, socket_connect_timeout=5) as redis:
            await aggregate_forever(redis, keys, pool, idle_s=1.0, stop=stop)
    finally:
        await pool.close()
