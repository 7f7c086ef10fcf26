"""Loads offers: the hot path of `nearcart ingest`, over one or two connections ("lanes").

Each batch is COPYed into a TEMP staging table; one statement dedupes it, upserts it and
returns what changed, with the values it replaced, so the index is patched right after the
batch commits, while the next batch is upserted. An offer older than the stored one is
ignored, and a row equal to the stored one writes nothing anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from cache.index import OfferWrites, index_writer_lock
from cache.index_generation import GenerationBumps
from cache.keys import Keys
from cache.loaders.base import Loader, create_staging
from cache.row_rules import offer_validator


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


class OfferLoader(Loader):
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
    # Retailers some of whose offers the index holds flagged unconfirmed (cache/unconfirmed.py): a changed
    # offer of theirs has its old member removed in both forms. Read under the index writer lock, which
    # the quality check needs too to flag more, so it holds for the whole run.
    flagged_retailers: frozenset[str] = frozenset()
    # The write generations this run's batches bumped, recorded in Redis once every index write is in.
    bumps: GenerationBumps

    @classmethod
    async def open(cls, conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, batch_rows: int) -> Loader:
        loader = cls(conn, redis, keys, batch_rows)
        loader.retailer_nums = {row[0]: row[1] for row in await conn.fetch("SELECT retailer_id, num FROM retailers")}
        stores: dict[str, set[str]] = {}
        places = loader.store_places = {}
        async with conn.transaction():
            async for row in conn.cursor("SELECT retailer_id, store_id, num, lat, lon FROM stores", prefetch=10_000):
                stores.setdefault(row[0], set()).add(row[1])
                places[row[0], row[1]] = (row[2], repr(row[4]), repr(row[3]))
        loader.validate = offer_validator(loader.retailer_nums, stores)
        loader.products = set()
        loader.bumps = GenerationBumps()
        loader.lanes = []
        await loader.add_connection(conn)
        return loader

    async def add_connection(self, conn: asyncpg.Connection) -> None:
        await create_staging(
            conn, "nearcart_offers_in", "seq bigint, retailer_id text, store_id text, gtin char(14),"
            " price_cents bigint, currency char(3), quantity integer, modes smallint, updated_us bigint",
        )
        self.lanes.append(_Lane(conn))

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        # Held for the whole run, so a batch's index write may overlap the next batch's upsert
        # without a rebuild slipping in between an upsert and its index write. Every offer writer
        # takes it, which is what lets _OFFER_UPSERT trust the stored values it read.
        async with index_writer_lock(self.conn):
            self.flagged_retailers = frozenset(row[0] for row in await self.conn.fetch(_FLAGGED_RETAILERS))
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
                writes, changed = await self._upsert(lane, *item)
                previous, applying = applying, asyncio.create_task(self._apply(applying, writes, changed))
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
    ) -> tuple[OfferWrites, int]:
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
                lane.analyzed = len(records) >= self.batch_rows // (2 * len(self.lanes))
            rows = None if lane.repeats else await self._upsert_unique(conn)
            if rows is None:
                lane.repeats = True
                rows = await conn.fetch(_OFFER_UPSERT)
            writes, changed, written, expected = self._changes(rows, records)
            if written != expected:
                # Someone wrote offers without the index writer lock: the old values read are not
                # what was replaced. Roll the batch back rather than patch the index wrongly.
                raise RuntimeError(f"offers changed during the ingest ({written} rows written, {expected} expected)")
            if changed:
                # Last in the transaction: the generation row stays locked against the other lane only until the commit.
                await self.bumps.bump(conn, self.keys)
        self.loaded += written
        self.index_changes += changed
        self.unindexed += changed
        if len(self.products) + len(products) > _KNOWN_PRODUCTS:
            self.products.clear()
        self.products.update(products)
        return writes, changed

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
        flagged = self.flagged_retailers
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
                store_offer(record[3], num, lon, lat, old, record[4:8], record[1] in flagged)
            else:
                delivery_offer(record[3], nums[record[1]], record[4:8])
        return writes, len(rows) - 1, written, expected

    async def _apply(self, previous: asyncio.Task[None] | None, writes: OfferWrites, changed: int) -> None:
        if previous is not None:
            await previous
        await writes.apply(self.redis, self.keys)
        self.unindexed -= changed

    async def finish(self) -> None:
        for lane in self.lanes:
            await self._hand(lane, None)
        for lane in self.lanes:
            assert lane.worker is not None
            await lane.worker
        # Every batch's index writes succeeded: Redis now holds this run's changes (still under the writer lock).
        await self.bumps.record(self.redis, self.keys)


# Per batch transaction. Feeds are re-sent daily and a lost batch is re-loaded by re-running the ingest
# (the upsert is idempotent), so a crash may lose the last commits: no need to wait for the WAL flush.
# JIT compiles for longer than these statements run. Seq scans off: right after the offers table was
# empty its statistics say so, and the planner would scan it once per row instead of using the key.
# Memoize off: every key of a batch is looked up once, so its cache only ever missed (and filled).
_OFFER_BATCH_SETTINGS = (
    "SET LOCAL work_mem = '64MB'; SET LOCAL synchronous_commit = off; SET LOCAL jit = off;"
    " SET LOCAL enable_seqscan = off; SET LOCAL enable_memoize = off"
)

# One index probe per retailer (a DISTINCT would read every note).
_FLAGGED_RETAILERS = """
SELECT r.retailer_id FROM retailers r
WHERE EXISTS (SELECT 1 FROM offers_unconfirmed u WHERE u.retailer_id = r.retailer_id AND NOT u.hidden)
"""

# Every GTIN of an offer is in the products table. Only GTINs the loader has not seen this run are sent;
# one of them whose offers all turn out older than the stored ones is in the table already.
_PRODUCTS_INSERT = "INSERT INTO products (gtin) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING"

# One statement per batch. `updated_us` (row_rules.offer_validator) becomes a timestamptz exactly: an interval
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
