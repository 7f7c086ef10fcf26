"""Feed ingestion: stream feed files into PostgreSQL in batches and apply each batch to the Redis index.

Rows are read (cache/feed_reader.py) and validated (cache/row_rules.py) one at a time;
good ones go in batches to the feed kind's loader (cache/loaders/), which upserts them
and patches the index right after each batch commits. While PostgreSQL works on one
batch the event loop parses the next: on two cores that overlap is most of the
throughput. Each run is recorded in `feed_runs`, with its counts and first rejects.

An offer older than the stored one is ignored, and a row equal to the stored one
writes nothing anywhere, so loading the same feed twice leaves the same state. So a batch
that committed while its index writes failed is not written again by a re-run: the run raises
`IndexWritesLost`, and the write generation (cache/index_generation.py) lets the API's index
healer find and rebuild the index.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import redis.asyncio as aioredis

from cache.feed_errors import FeedError, RowError
from cache.feed_health import record_feed_health
from cache.feed_kinds import KINDS
from cache.feed_reader import FeedReader
from cache.formats.base import FeedOptions
from cache.index_generation import IndexWritesLost
from cache.ingest_report import KEPT_REJECTS, IngestReport, Reject
from cache.keys import Keys
from cache.loaders.base import Loader
from cache.loaders.offers import OfferLoader
from cache.loaders.products import ProductLoader, prepare_options
from cache.loaders.retailers import RetailerLoader
from cache.loaders.stores import StoreLoader

BATCH_ROWS = 50_000
# The run's feed_runs row keeps its first this many rejects.
FEED_RUN_REJECTS = 100
# Distinct retailer ids counted in a run's rejected rows; any further ones are counted under "" (none known).
MAX_RETAILERS_COUNTED = 10_000
# While a batch is in flight, let the event loop drive it every this many parsed rows.
_YIELD_EVERY = 2048
# Each feed kind's loader, with the SQL that upserts its rows.
LOADERS: dict[str, type[Loader]] = {
    "retailers": RetailerLoader, "stores": StoreLoader, "offers": OfferLoader, "products": ProductLoader,
}


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
    `options` force a format and name the retailer whose feed this is (cache/feed_reader.py).
    """
    started = time.perf_counter()
    report = IngestReport(kind=kind, files=[str(f) for f in files])
    # Whose feed this is, kept with the run (a retailer's history of runs; NULL: rows of any retailer).
    retailer = options.retailer if options else None
    if kind not in KINDS:
        report.fatal = f"unknown feed kind {kind!r}; expected one of {', '.join(KINDS)}"
        return report
    try:
        options = await prepare_options(conn, kind, options or FeedOptions())
        for path in files:
            FeedReader(path, kind, options).close()  # every file's header is checked before anything is loaded
    except FeedError as exc:
        report.fatal = str(exc)
        await _record_run(conn, report, None, retailer=retailer)
        return report

    loader = await LOADERS[kind].open(conn, redis, keys, BATCH_ROWS)
    run_id = await conn.fetchval(
        "INSERT INTO feed_runs (kind, files, retailer_id) VALUES ($1, $2, $3) RETURNING id",
        kind, report.files, retailer,
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
        # Committed, yet not in the index: a re-run would find those rows stored and write nothing, so say so
        # (even should recording the run fail too).
        lost = IndexWritesLost(loader.unindexed, exc) if loader.unindexed and isinstance(exc, Exception) else None
        try:
            await asyncio.shield(_record_run(conn, report, run_id, status="failed"))
        finally:
            if lost is not None:
                raise lost from exc
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
    report: IngestReport, loader: Loader, files: list[Path], on_reject: Callable[[Reject], None] | None,
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
    loader: Loader,
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
    # Rows per retailer (the data-quality figures are per retailer, and an operator's feed may carry
    # several): accepted ones counted a batch at a time from their records (retailer_id second), at C
    # speed; rejected ones by the retailer their row names.
    accepted_by: Counter[str] = Counter()
    rejected_by = report.retailer_rejects
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
                    retailer = str(values[0]) if values else options.retailer or ""
                    if retailer not in rejected_by and len(rejected_by) >= MAX_RETAILERS_COUNTED:
                        retailer = ""  # a feed of made-up ids must not grow memory
                    rejected_by[retailer] = rejected_by.get(retailer, 0) + 1
                    reject = Reject(name, line, problem[0], problem[1])
                    if len(kept) < KEPT_REJECTS:
                        kept.append(reject)
                    if on_reject is not None:
                        on_reject(reject)
                if len(batch) >= BATCH_ROWS:
                    accepted_by.update(map(itemgetter(1), batch))
                    if pending:
                        await pending.pop()
                    pending.append(asyncio.create_task(loader.flush(batch)))
                    batch = []
                elif pending and not seq % _YIELD_EVERY:
                    await asyncio.sleep(0)
    accepted_by.update(map(itemgetter(1), batch))
    report.rows_read = seq
    report.rows_rejected = rejected
    report.retailer_rows = dict(accepted_by + Counter(rejected_by))
    if pending:
        await pending.pop()
    if batch:
        pending.append(asyncio.create_task(loader.flush(batch)))


async def _record_run(
    conn: asyncpg.Connection, report: IngestReport, run_id: int | None, status: str = "", retailer: str | None = None
) -> None:
    status = status or ("failed" if report.fatal else "rejected rows" if report.rows_rejected else "ok")
    rejects = msgspec.json.encode(report.rejects[:FEED_RUN_REJECTS]).decode()
    if report.fatal:
        rejects = msgspec.json.encode([{"error": report.fatal}]).decode()
    if run_id is None:
        run_id = await conn.fetchval(
            "INSERT INTO feed_runs (kind, files, retailer_id) VALUES ($1, $2, $3) RETURNING id",
            report.kind, report.files, retailer,
        )
    await conn.execute(
        "UPDATE feed_runs SET finished_at = now(), rows_read = $2, rows_loaded = $3, rows_rejected = $4,"
        " status = $5, rejects = $6::jsonb WHERE id = $1",
        run_id, report.rows_read, report.rows_loaded, report.rows_rejected, status, rejects,
    )
    report.run_id = run_id
    await record_feed_health(
        conn, run_id, report.kind, report.retailer_rows, report.retailer_rejects, stopped=status == "failed"
    )

