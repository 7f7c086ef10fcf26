"""`nearcart ingest`: stream a feed into PostgreSQL in batches and apply each batch to the Redis index.

Rows are validated one at a time (cache/feeds.py) and good ones COPYed in batches
into a TEMP staging table; one statement per batch dedupes the batch, upserts it
and returns what changed, with the values it replaced, so the index is patched
right after the batch commits. While PostgreSQL works on one batch the event
loop parses the next: on two cores that overlap is most of the throughput.

An offer older than the stored one is ignored, and a row equal to the stored one
writes nothing anywhere, so loading the same feed twice leaves the same state.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import hiredis
import msgspec
import redis.asyncio as aioredis
from redis.connection import HiredisRespSerializer
from redis.exceptions import RedisError

from cache.db import DATABASE_UNAVAILABLE
from cache.feeds import KINDS, FeedError, FeedReader, RowError, offer_validator, store_validator, validate_retailer
from cache.formats import FeedOptions
from cache.formats.items import ITEMS_STAGING, ITEMS_UPSERT, item_validator
from cache.formats.items import prepare as prepare_options
from cache.index import OfferWrites
from cache.keys import Keys
from edge_api.settings import Settings

BATCH_ROWS = 50_000
# The report struct keeps this many rejects; `on_reject` (the printed report) sees every one.
KEPT_REJECTS = 1000
FEED_RUN_REJECTS = 100
# While a batch is in flight, let the event loop drive it every this many parsed rows.
_YIELD_EVERY = 2048


class Reject(msgspec.Struct, frozen=True):
    file: str
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.reason}"


class IngestReport(msgspec.Struct, kw_only=True):
    kind: str
    files: list[str]
    rows_read: int = 0
    # Rows that inserted or updated a catalog row.
    rows_loaded: int = 0
    # Good rows that changed nothing: equal to or older than the stored row, or repeated in the feed.
    rows_unchanged: int = 0
    rows_rejected: int = 0
    rejects: list[Reject] = msgspec.field(default_factory=list)
    index_changes: int = 0
    # Why the input could not be used at all; nothing was loaded.
    fatal: str | None = None
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        if self.fatal is not None:
            return 2
        return 3 if self.rows_rejected else 0

    def summary(self) -> str:
        if self.fatal is not None:
            return f"{self.kind}: nothing loaded: {self.fatal}"
        return (
            f"{self.kind}: {self.rows_read} rows read, {self.rows_loaded} loaded, {self.rows_unchanged} unchanged,"
            f" {self.rows_rejected} rejected; {self.index_changes} index changes; {self.seconds:.1f} s"
        )


async def ingest_files(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    keys: Keys,
    kind: str,
    files: list[Path],
    on_reject: Callable[[Reject], None] | None = None,
    connect: Callable[[], Awaitable[asyncpg.Connection]] | None = None,
    options: FeedOptions | None = None,
) -> IngestReport:
    """Load `files` (one feed kind) into the catalog and the live index; report every rejected row.

    With `connect` (a factory of connections to the same database), an offers ingest opens one
    more connection and upserts half of each batch on it, so two PostgreSQL backends work at once.
    `options` force a format and name the retailer whose feed this is (cache/formats/).
    """
    started = time.perf_counter()
    report = IngestReport(kind=kind, files=[str(f) for f in files])
    if kind not in KINDS:
        report.fatal = f"unknown feed kind {kind!r}; expected one of {', '.join(KINDS)}"
        return report
    try:
        options = await prepare_options(conn, kind, options or FeedOptions())
        for path in files:
            FeedReader(path, kind, options).close()  # every file's header is checked before anything is loaded
    except FeedError as exc:
        report.fatal = str(exc)
        await _record_run(conn, report, None)
        return report

    loader = await _LOADERS[kind].open(conn, redis, keys)
    run_id = await conn.fetchval(
        "INSERT INTO feed_runs (kind, files) VALUES ($1, $2) RETURNING id", kind, report.files
    )
    extra: asyncpg.Connection | None = None
    try:
        if connect is not None and loader.parallel:
            extra = await connect()
            await loader.add_connection(extra)
        async with loader.session():
            with _collector_paused():
                await _read_and_load(report, loader, files, on_reject, options)
                await loader.finish()
    except BaseException as exc:
        report.fatal = report.fatal or f"stopped after {report.rows_read} rows: {type(exc).__name__}: {exc}"
        report.seconds = time.perf_counter() - started
        await asyncio.shield(_record_run(conn, report, run_id, status="failed"))
        raise
    finally:
        if extra is not None:
            await extra.close()
    report.rows_loaded = loader.loaded
    report.index_changes = loader.index_changes
    report.rows_unchanged = report.rows_read - report.rows_rejected - loader.loaded
    report.seconds = time.perf_counter() - started
    await _record_run(conn, report, run_id)
    return report


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while rows stream through.

    The hot loop makes only acyclic objects (strings, tuples), freed by reference counting; yet every
    few hundred of them the collector ran and walked the batches in flight, which cost more than a
    tenth of the ingest's Python time. The few cycles asyncio makes meanwhile are collected after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def _read_and_load(
    report: IngestReport, loader: _Loader, files: list[Path], on_reject: Callable[[Reject], None] | None,
    options: FeedOptions,
) -> None:
    """Parse and validate rows, hand full batches to the loader and parse on while it works."""
    pending: list[asyncio.Task[None]] = []
    try:
        await _parse_into(report, loader, files, on_reject, pending, options)
        if pending:
            await pending[0]
    finally:
        if pending and not pending[0].done():
            pending[0].cancel()
            with contextlib.suppress(BaseException):
                await pending[0]  # the connection is free again only once the task has stopped


async def _parse_into(
    report: IngestReport,
    loader: _Loader,
    files: list[Path],
    on_reject: Callable[[Reject], None] | None,
    pending: list[asyncio.Task[None]],
    options: FeedOptions,
) -> None:
    """The hot loop. `pending` holds the one batch in flight, if any."""
    validate = loader.validate
    batch: list[tuple[Any, ...]] = []
    seq = 0
    rejected = 0
    kept = report.rejects
    for path in files:
        name = str(path)
        with FeedReader(path, loader.kind, options) as reader:
            for line, values, problem in reader:
                seq += 1
                if problem is None:
                    try:
                        # Staging keeps the row's place in the whole run (not its line): "first/last row wins".
                        batch.append(validate(seq, values))
                    except RowError as exc:
                        problem = (exc.field, exc.reason)
                if problem is not None:
                    rejected += 1
                    reject = Reject(name, line, problem[0], problem[1])
                    if len(kept) < KEPT_REJECTS:
                        kept.append(reject)
                    if on_reject is not None:
                        on_reject(reject)
                if len(batch) >= BATCH_ROWS:
                    if pending:
                        await pending.pop()
                    pending.append(asyncio.create_task(loader.flush(batch)))
                    batch = []
                elif pending and not seq % _YIELD_EVERY:
                    await asyncio.sleep(0)
    report.rows_read = seq
    report.rows_rejected = rejected
    if pending:
        await pending.pop()
    if batch:
        pending.append(asyncio.create_task(loader.flush(batch)))


async def _record_run(conn: asyncpg.Connection, report: IngestReport, run_id: int | None, status: str = "") -> None:
    status = status or ("failed" if report.fatal else "rejected rows" if report.rows_rejected else "ok")
    rejects = msgspec.json.encode(report.rejects[:FEED_RUN_REJECTS]).decode()
    if report.fatal:
        rejects = msgspec.json.encode([{"error": report.fatal}]).decode()
    if run_id is None:
        run_id = await conn.fetchval(
            "INSERT INTO feed_runs (kind, files) VALUES ($1, $2) RETURNING id", report.kind, report.files
        )
    await conn.execute(
        "UPDATE feed_runs SET finished_at = now(), rows_read = $2, rows_loaded = $3, rows_rejected = $4,"
        " status = $5, rejects = $6::jsonb WHERE id = $1",
        run_id, report.rows_read, report.rows_loaded, report.rows_rejected, status, rejects,
    )


# --- loaders: one per feed kind ------------------------------------------------------------------------------------


class _Loader:
    kind = ""
    loaded = 0
    index_changes = 0
    # Whether `add_connection` can take a second connection to flush on.
    parallel = False
    validate: Callable[[int, tuple[Any, ...]], tuple[Any, ...]]

    def __init__(self, conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys) -> None:
        self.conn, self.redis, self.keys = conn, redis, keys

    @classmethod
    async def open(cls, conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys) -> _Loader:
        raise NotImplementedError

    async def flush(self, records: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def session(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Held for the whole run, around every flush and `finish`."""
        return contextlib.nullcontext()

    async def finish(self) -> None:
        """Work done once after the last batch."""

    async def add_connection(self, conn: asyncpg.Connection) -> None:
        raise NotImplementedError


class _RetailerLoader(_Loader):
    kind = "retailers"

    @classmethod
    async def open(cls, conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys) -> _Loader:
        loader = cls(conn, redis, keys)
        loader.validate = validate_retailer
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS nearcart_retailers_in (seq bigint, retailer_id text, name text,"
            " logo_url text, cart_url_template text, delivery_countries text[], delivery_zones text)"
            " ON COMMIT DELETE ROWS"
        )
        return loader

    async def flush(self, records: list[tuple[Any, ...]]) -> None:
        async with self.conn.transaction():
            await self.conn.copy_records_to_table("nearcart_retailers_in", records=records)
            self.loaded += await self.conn.fetchval(_RETAILER_UPSERT)

    async def finish(self) -> None:
        if self.loaded:
            from cache.index import refresh_directory

            await refresh_directory(self.conn, self.redis, self.keys)


# Updates and inserts are separate so an unchanged retailer does not burn an identity number.
_RETAILER_UPSERT = """
WITH s AS (
    SELECT DISTINCT ON (retailer_id) * FROM nearcart_retailers_in ORDER BY retailer_id, seq DESC
), changed AS (
    UPDATE retailers r SET name = s.name, logo_url = s.logo_url, cart_url_template = s.cart_url_template,
        delivery_countries = s.delivery_countries, delivery_zones = s.delivery_zones::jsonb, updated_at = now()
    FROM s
    WHERE r.retailer_id = s.retailer_id
      AND (r.name, r.logo_url, r.cart_url_template, r.delivery_countries, r.delivery_zones)
          IS DISTINCT FROM (s.name, s.logo_url, s.cart_url_template, s.delivery_countries, s.delivery_zones::jsonb)
    RETURNING 1
), added AS (
    INSERT INTO retailers (retailer_id, name, logo_url, cart_url_template, delivery_countries, delivery_zones)
    SELECT retailer_id, name, logo_url, cart_url_template, delivery_countries, delivery_zones::jsonb FROM s
    WHERE NOT EXISTS (SELECT 1 FROM retailers r WHERE r.retailer_id = s.retailer_id)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM changed) + (SELECT count(*) FROM added)
"""


class _StoreLoader(_Loader):
    kind = "stores"

    def __init__(self, conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys) -> None:
        super().__init__(conn, redis, keys)
        self.moved: list[int] = []  # numbers of stores whose coordinates changed

    @classmethod
    async def open(cls, conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys) -> _Loader:
        loader = cls(conn, redis, keys)
        retailers = {row[0] for row in await conn.fetch("SELECT retailer_id FROM retailers")}
        loader.validate = store_validator(retailers)
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS nearcart_stores_in (seq bigint, retailer_id text, store_id text,"
            " name text, address text, postal_code text, city text, country text, lat float8, lon float8,"
            " approximate bool)"
            " ON COMMIT DELETE ROWS"
        )
        return loader

    async def flush(self, records: list[tuple[Any, ...]]) -> None:
        async with self.conn.transaction():
            await self.conn.copy_records_to_table("nearcart_stores_in", records=records)
            rows = await self.conn.fetch(_STORE_UPSERT)
        self.loaded += len(rows)
        self.moved += [row["num"] for row in rows if row["moved"]]

    async def finish(self) -> None:
        if not self.loaded:
            return
        from cache.index import index_writer_lock, refresh_directory, reposition_store_offers

        await refresh_directory(self.conn, self.redis, self.keys)
        if self.moved:
            async with index_writer_lock(self.conn):
                await reposition_store_offers(self.conn, self.redis, self.keys, self.moved)
            self.index_changes += len(self.moved)


_STORE_UPSERT = """
WITH s AS (
    SELECT DISTINCT ON (retailer_id, store_id) * FROM nearcart_stores_in ORDER BY retailer_id, store_id, seq DESC
), changed AS (
    UPDATE stores st SET name = s.name, address = s.address, postal_code = s.postal_code, city = s.city,
        country = s.country, lat = s.lat, lon = s.lon, approximate = s.approximate, updated_at = now()
    FROM s, stores before
    WHERE st.retailer_id = s.retailer_id AND st.store_id = s.store_id
      AND before.retailer_id = st.retailer_id AND before.store_id = st.store_id
      AND (st.name, st.address, st.postal_code, st.city, st.country::text, st.lat, st.lon, st.approximate)
          IS DISTINCT FROM (s.name, s.address, s.postal_code, s.city, s.country, s.lat, s.lon, s.approximate)
    RETURNING st.num, (before.lat, before.lon) IS DISTINCT FROM (s.lat, s.lon) AS moved
), added AS (
    INSERT INTO stores (retailer_id, store_id, name, address, postal_code, city, country, lat, lon, approximate)
    SELECT retailer_id, store_id, name, address, postal_code, city, country, lat, lon, approximate FROM s
    WHERE NOT EXISTS (SELECT 1 FROM stores x WHERE x.retailer_id = s.retailer_id AND x.store_id = s.store_id)
    ON CONFLICT DO NOTHING
    RETURNING num, false AS moved
)
SELECT num, moved FROM changed UNION ALL SELECT num, moved FROM added
"""


class _Lane:
    """One connection, and the share of every batch whose GTINs hash to it.

    Lanes run on their own: a lane that finished its part of a batch takes its part of the next
    one while the other lane is still busy, and patches the index itself, since the index keys are
    per GTIN and a GTIN always falls in the same lane. Parts wait in a queue of one, so memory
    stays constant.
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.analyzed = False
        # Whether a batch of this run repeated an offer key: later ones are deduped at once.
        self.repeats = False
        self.parts: asyncio.Queue[_Part | None] = asyncio.Queue(maxsize=1)
        self.worker: asyncio.Task[None] | None = None


# A lane's share of a batch: its rows, and their GTINs that may be missing from the products table.
_Part = tuple[list[tuple[Any, ...]], list[str]]
# GTINs the loader knows to be in the products table; bounded, so a feed of millions of distinct
# GTINs cannot grow memory without limit (forgetting one only costs a redundant insert).
_KNOWN_PRODUCTS = 100_000


class _KeyRepeats(Exception):
    """An offer key appears twice in one batch: it needs the upsert that dedupes."""


class _OfferLoader(_Loader):
    kind = "offers"
    parallel = True
    lanes: list[_Lane]
    # retailer_id -> num; (retailer_id, store_id) -> (num, lon, lat): the index needs them for changed rows only,
    # and a dict lookup here is cheaper than a join per batch in PostgreSQL (the busier process).
    # Coordinates are kept as the text Redis is sent (repr, exact): formatting two floats per
    # changed offer cost more than the rest of its GEOADD.
    retailer_nums: dict[str, int]
    store_places: dict[tuple[str, str], tuple[int, str, str]]
    # GTINs already in the products table: a feed repeats a few thousand GTINs over millions of rows,
    # and asking PostgreSQL to insert each batch's distinct GTINs cost a sort and a conflict per GTIN.
    products: set[str]

    @classmethod
    async def open(cls, conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys) -> _Loader:
        loader = cls(conn, redis, keys)
        loader.retailer_nums = {row[0]: row[1] for row in await conn.fetch("SELECT retailer_id, num FROM retailers")}
        stores: dict[str, set[str]] = {}
        places = loader.store_places = {}
        async with conn.transaction():
            async for row in conn.cursor("SELECT retailer_id, store_id, num, lat, lon FROM stores", prefetch=10_000):
                stores.setdefault(row[0], set()).add(row[1])
                places[row[0], row[1]] = (row[2], repr(row[4]), repr(row[3]))
        loader.validate = offer_validator(loader.retailer_nums, stores)
        loader.products = set()
        loader.lanes = []
        await loader.add_connection(conn)
        return loader

    async def add_connection(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS nearcart_offers_in (seq bigint, retailer_id text, store_id text,"
            " gtin char(14), price_cents bigint, currency char(3), quantity integer, modes smallint,"
            " updated_us bigint) ON COMMIT DELETE ROWS"
        )
        self.lanes.append(_Lane(conn))

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        # Held for the whole run, so a batch's index write may overlap the next batch's upsert
        # without a rebuild slipping in between an upsert and its index write. Every offer writer
        # takes it, which is what lets _OFFER_UPSERT trust the stored values it read.
        from cache.index import index_writer_lock

        async with index_writer_lock(self.conn):
            for lane in self.lanes:
                lane.worker = asyncio.create_task(self._work(lane))
            try:
                yield
            finally:
                workers = [lane.worker for lane in self.lanes if lane.worker is not None]
                for worker in workers:
                    worker.cancel()
                # A connection is free again only once its worker has stopped.
                await asyncio.gather(*workers, return_exceptions=True)

    async def flush(self, records: list[tuple[Any, ...]]) -> None:
        lanes = self.lanes
        products = list({record[3] for record in records} - self.products)
        count = len(lanes)
        if count == 1:
            parts = [records]
            gtins = [products]
        else:
            # Split by GTIN, so the two transactions never touch the same offer. A lane takes its
            # parts in order, so the rows of one key still reach PostgreSQL in feed order.
            parts = [[] for _ in lanes]
            adds = [part.append for part in parts]
            for record in records:
                adds[hash(record[3]) % count](record)
            gtins = [[] for _ in lanes]
            for gtin in products:
                gtins[hash(gtin) % count].append(gtin)
        for lane, part, new in zip(lanes, parts, gtins, strict=True):
            if part:
                await self._hand(lane, (part, new))

    async def _hand(self, lane: _Lane, part: _Part | None) -> None:
        """Queue `part` for `lane`, or raise what stopped the lane's worker."""
        worker = lane.worker
        assert worker is not None
        if not worker.done():
            put = asyncio.ensure_future(lane.parts.put(part))
            await asyncio.wait((put, worker), return_when=asyncio.FIRST_COMPLETED)
            if put.done():
                return
            put.cancel()
        worker.result()  # raises the worker's error
        raise RuntimeError("offer lane stopped early")

    async def _work(self, lane: _Lane) -> None:
        """Upsert a lane's parts one after the other; each part's index write overlaps the next upsert."""
        applying: asyncio.Task[None] | None = None
        try:
            while (item := await lane.parts.get()) is not None:
                writes = await self._upsert(lane, *item)
                previous, applying = applying, asyncio.create_task(self._apply(applying, writes))
                if previous is not None:
                    await previous
            if applying is not None:
                await applying
        finally:
            if applying is not None and not applying.done():
                applying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await applying

    async def _upsert(
        self, lane: _Lane, records: list[tuple[Any, ...]], products: list[str]
    ) -> OfferWrites:
        conn = lane.conn
        async with conn.transaction():
            await conn.execute(_OFFER_BATCH_SETTINGS)
            if products:
                await conn.execute(_PRODUCTS_INSERT, sorted(products))
            await conn.copy_records_to_table("nearcart_offers_in", records=records)
            if not lane.analyzed:
                # Temp tables get no autovacuum statistics: estimate the dedupe from one real batch.
                # A full batch's statistics stay valid for the next ones (rows go, statistics stay).
                # Half a share, not a whole one: the GTIN hash splits a batch unevenly, and a lane
                # whose parts all fell short re-ran ANALYZE on every part (a tenth of PostgreSQL's time).
                await conn.execute("ANALYZE nearcart_offers_in")
                lane.analyzed = len(records) >= BATCH_ROWS // (2 * len(self.lanes))
            rows = None if lane.repeats else await self._upsert_unique(conn)
            if rows is None:
                lane.repeats = True
                rows = await conn.fetch(_OFFER_UPSERT)
            writes, changed, written, expected = self._changes(rows, records)
            if written != expected:
                # Someone wrote offers without the index writer lock: the old values read are not
                # what was replaced. Roll the batch back rather than patch the index wrongly.
                raise RuntimeError(f"offers changed during the ingest ({written} rows written, {expected} expected)")
        self.loaded += written
        self.index_changes += changed
        if len(self.products) + len(products) > _KNOWN_PRODUCTS:
            self.products.clear()
        self.products.update(products)
        return writes

    async def _upsert_unique(self, conn: asyncpg.Connection) -> list[asyncpg.Record] | None:
        """The upsert without the dedupe, or None, having written nothing, if a key repeats in the batch.

        A full feed names each offer once: then PostgreSQL need not sort the batch to dedupe it, and
        checking that here (a set of 25k key tuples) cost more Python time than the rare retry. A
        repeated key shows anyway: a new one fails the INSERT on the primary key, a stored one is
        counted twice where the UPDATE writes once. A key whose rows are all but one older than the
        stored row needs no dedupe: those rows are left out as the dedupe would leave them out.
        """
        try:
            async with conn.transaction():  # a savepoint: a repeat rolls back to it
                rows: list[asyncpg.Record] = await conn.fetch(_OFFER_UPSERT_UNIQUE)
                counts = next(row for row in reversed(rows) if row[0] is None)  # the count row, last
                if counts["written"] != counts["expected"]:
                    raise _KeyRepeats
        except (asyncpg.UniqueViolationError, _KeyRepeats):
            return None
        return rows

    def _changes(
        self, rows: Sequence[asyncpg.Record], records: list[tuple[Any, ...]]
    ) -> tuple[OfferWrites, int, int, int]:
        """The index writes of one batch, how many offers changed, how many offer rows it wrote,
        and how many it meant to write.

        PostgreSQL returns a changed row's staging `seq` and the values it replaced; the new values
        are the batch's own record (the one the dedupe kept), so they are not decoded a second time.
        """
        nums = self.retailer_nums
        places = self.store_places
        writes = OfferWrites()
        store_offer, delivery_offer = writes.store_offer, writes.delivery_offer
        # Only the count row when nothing changed (a re-sent feed): then no need to index the batch.
        by_seq = {record[0]: record for record in records} if len(rows) > 1 else {}
        written = expected = 0
        for seq, old_cents, old_currency, old_quantity, old_modes, row_written, row_expected in rows:
            if seq is None:  # the count row
                written, expected = row_written, row_expected
                continue
            record = by_seq[seq]
            store_id = record[2]
            if store_id:
                num, lon, lat = places[record[1], store_id]
                old = None if old_cents is None else (old_cents, old_currency, old_quantity, old_modes)
                store_offer(record[3], num, lon, lat, old, record[4:8])
            else:
                delivery_offer(record[3], nums[record[1]], record[4:8])
        return writes, len(rows) - 1, written, expected

    async def _apply(self, previous: asyncio.Task[None] | None, writes: OfferWrites) -> None:
        if previous is not None:
            await previous
        await writes.apply(self.redis, self.keys)

    async def finish(self) -> None:
        for lane in self.lanes:
            await self._hand(lane, None)
        for lane in self.lanes:
            assert lane.worker is not None
            await lane.worker


# Per batch transaction. Feeds are re-sent daily and a lost batch is re-loaded by re-running the ingest
# (the upsert is idempotent), so a crash may lose the last commits: no need to wait for the WAL flush.
# JIT compiles for longer than these statements run. Seq scans off: right after the offers table was
# empty its statistics say so, and the planner would scan it once per row instead of using the key.
# Memoize off: every key of a batch is looked up once, so its cache only ever missed (and filled).
_OFFER_BATCH_SETTINGS = (
    "SET LOCAL work_mem = '64MB'; SET LOCAL synchronous_commit = off; SET LOCAL jit = off;"
    " SET LOCAL enable_seqscan = off; SET LOCAL enable_memoize = off"
)

# Every GTIN of an offer is in the products table. Only GTINs the loader has not seen this run are sent;
# one of them whose offers all turn out older than the stored ones is in the table already.
_PRODUCTS_INSERT = "INSERT INTO products (gtin) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING"

# One statement per batch. `updated_us` (feeds.offer_validator) becomes a timestamptz exactly: an interval
# of whole microseconds added to the epoch. The batch is deduped (the newest row per key; of rows with the same key and
# time the first wins, as across batches with the strict <), sorted in byte order (COLLATE "C" skips the
# locale's strcoll), and each key's stored row is fetched by primary-key lookup (LATERAL ... LIMIT 1).
# Every offer writer holds the index writer lock, so what `j` read is what the statement replaces: new
# keys get a plain INSERT and newer rows an UPDATE by ctid, each about half the cost of INSERT ... ON
# CONFLICT's speculative insertion and row lock. Rows no newer than the stored one are not touched, so
# a re-sent feed writes nothing; the UPDATE's `updated_at <` still guards the order. Should the lock
# ever be bypassed, a duplicate key fails the INSERT, and a row changed meanwhile is skipped by the
# UPDATE and caught by the `written` = `expected` check: either way the batch rolls back.
# Prices go back to numeric as `cents * 0.01`: as exact as `/ 100.0` (numeric arithmetic is decimal),
# a third of its cost.
# The changes for the index come from `j`: the kept row's seq and the values it replaced (the new ones are
# in the batch's record already); rows out of stock before and after are left out (the index never held them).
_OFFER_UPSERT = """
WITH s AS (
    SELECT DISTINCT ON (retailer_id COLLATE "C", store_id COLLATE "C", gtin COLLATE "C")
        seq, retailer_id, store_id, gtin, price_cents, currency, quantity, modes,
        timestamptz 'epoch' + updated_us * interval '1 microsecond' AS updated_at
    FROM nearcart_offers_in
    ORDER BY retailer_id COLLATE "C", store_id COLLATE "C", gtin COLLATE "C", updated_us DESC, seq
), j AS (
    SELECT s.*, o.ctid AS o_ctid, o.price AS o_price, o.currency AS o_currency, o.quantity AS o_quantity,
        o.modes AS o_modes, o.updated_at AS o_updated_at
    FROM s LEFT JOIN LATERAL (
        SELECT ctid, price, currency, quantity, modes, updated_at FROM offers o
        WHERE o.retailer_id = s.retailer_id AND o.store_id = s.store_id AND o.gtin = s.gtin LIMIT 1
    ) o ON true
), added AS (
    INSERT INTO offers (retailer_id, store_id, gtin, price, currency, quantity, modes, updated_at)
    SELECT retailer_id, store_id, gtin, price_cents * 0.01, currency, quantity, modes, updated_at
    FROM j WHERE o_ctid IS NULL
    RETURNING 1
), updated AS (
    UPDATE offers o SET price = j.price_cents * 0.01, currency = j.currency, quantity = j.quantity,
        modes = j.modes, updated_at = j.updated_at
    FROM j
    WHERE j.o_updated_at < j.updated_at AND o.ctid = j.o_ctid AND o.updated_at < j.updated_at
    RETURNING 1
)
SELECT seq, (o_price * 100)::bigint AS old_cents, o_currency::text, o_quantity, o_modes::int,
    NULL::bigint AS written, NULL::bigint AS expected
FROM j
WHERE (o_ctid IS NULL AND quantity > 0)
   OR (o_updated_at < updated_at AND (quantity > 0 OR o_quantity > 0)
       AND (o_price * 100, o_currency, o_quantity, o_modes) IS DISTINCT FROM (price_cents, currency, quantity, modes))
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL,
    (SELECT count(*) FROM added) + (SELECT count(*) FROM updated),
    (SELECT count(*) FROM j WHERE o_ctid IS NULL OR o_updated_at < updated_at)
"""

# A batch in which no key repeats needs no dedupe: the same statement without the sort (see _upsert_unique).
_OFFER_UPSERT_UNIQUE = _OFFER_UPSERT.replace(
    """SELECT DISTINCT ON (retailer_id COLLATE "C", store_id COLLATE "C", gtin COLLATE "C")
        seq,""",
    "SELECT seq,",
).replace(
    """    FROM nearcart_offers_in
    ORDER BY retailer_id COLLATE "C", store_id COLLATE "C", gtin COLLATE "C", updated_us DESC, seq
""",
    "    FROM nearcart_offers_in\n",
)
assert "DISTINCT ON" not in _OFFER_UPSERT_UNIQUE and "updated_us DESC" not in _OFFER_UPSERT_UNIQUE

class _ItemLoader(_Loader):
    """A retailer's item id -> GTIN map (cache/formats/items.py); nothing in the index depends on it."""

    kind = "products"

    @classmethod
    async def open(cls, conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys) -> _Loader:
        loader = cls(conn, redis, keys)
        loader.validate = item_validator({row[0] for row in await conn.fetch("SELECT retailer_id FROM retailers")})
        await conn.execute(ITEMS_STAGING)
        return loader

    async def flush(self, records: list[tuple[Any, ...]]) -> None:
        async with self.conn.transaction():
            await self.conn.copy_records_to_table("nearcart_items_in", records=records)
            self.loaded += await self.conn.fetchval(ITEMS_UPSERT)


_LOADERS: dict[str, type[_Loader]] = {
    "retailers": _RetailerLoader, "stores": _StoreLoader, "offers": _OfferLoader, "products": _ItemLoader,
}


# --- the command ---------------------------------------------------------------------------------------------------


def ingest_redis(url: str) -> aioredis.Redis:
    """A Redis client for ingest: commands are packed by hiredis in C.

    redis.asyncio packs every argument in Python; a million-offer feed sends millions of
    arguments, and packing them cost a third of the ingest's Python time.
    """
    client = aioredis.Redis.from_url(url)
    pool = client.connection_pool
    base = pool.connection_class
    pool.connection_class = type(f"HiredisPacked{base.__name__}", (_HiredisPacking, base), {})
    return client


class _HiredisPacking:
    """Mixin over a redis.asyncio Connection class (TCP, TLS or Unix socket alike)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return [_pack(args)]

    def pack_commands(self, commands: Iterable[Iterable[Any]]) -> list[bytes]:
        return [b"".join(_pack(tuple(command)) for command in commands)]


_fallback = HiredisRespSerializer()


def _pack(args: tuple[Any, ...]) -> bytes:
    head = args[0]
    if isinstance(head, str) and " " not in head:
        try:
            packed: bytes = hiredis.pack_command(args)
            return packed
        except TypeError:
            pass
    # "CLIENT SETINFO" style names, or argument types only redis-py knows how to send.
    return b"".join(_fallback.pack(*args))


async def run_ingest_command(
    settings: Settings, kind: str, files: list[Path], options: FeedOptions | None = None
) -> int:
    """`nearcart ingest KIND FILE... [--retailer ID] [--format F]`: print each rejected row and a summary;
    return the exit status."""
    keys = Keys(settings.redis_prefix)

    def show(reject: Reject) -> None:
        print(reject)

    try:
        conn = await asyncpg.connect(settings.database_url, timeout=settings.database_timeout_s * 5)
    except DATABASE_UNAVAILABLE as exc:
        print(f"error: cannot reach PostgreSQL: {exc}", file=sys.stderr)
        return 1
    redis = ingest_redis(settings.redis_url)
    try:
        report = await ingest_files(
            conn, redis, keys, kind, files, on_reject=show,
            connect=lambda: asyncpg.connect(settings.database_url, timeout=settings.database_timeout_s * 5),
            options=options,
        )
    except (*DATABASE_UNAVAILABLE, RedisError) as exc:
        # A service failed, not the input: rows up to the last committed batch are loaded; a re-run is safe.
        print(f"error: {kind} ingest stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        await conn.close()
        await redis.aclose()
    print(report.summary())
    return report.exit_code
