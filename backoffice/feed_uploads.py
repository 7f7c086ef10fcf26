"""Feeds a retailer uploads (back-office form or `PUT /admin/v1/retailers/{id}/feeds/{kind}`): spooled, then ingested.

The body is streamed to a temporary file, chunk by chunk, and refused past
`NEARCART_FEED_UPLOAD_MAX_BYTES` (it is never held whole in memory). The file then goes
through the same ingest as `nearcart ingest KIND FILE --retailer ID`: a row naming another
retailer is rejected with that reason, so an upload only ever writes its own retailer's
stores and offers. The ingest runs in a thread on an event loop of its own: parsing a
feed is CPU work that would otherwise stall every request this worker is answering.
A file larger than `NEARCART_FEED_UPLOAD_BACKGROUND_BYTES` loads in the background;
`feed_uploads` says how far it got, and keeps the report once it is done.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import anyio
import anyio.to_thread
import asyncpg
import msgspec
from redis.exceptions import RedisError

from cache.db import DATABASE_UNAVAILABLE
from cache.formats.base import FeedOptions
from cache.ingest import ingest_files
from cache.ingest_report import IngestReport
from cache.keys import Keys
from cache.redis_topology import primary_client
from edge_api.settings import Settings

# Feed kinds a retailer may upload (retailers are made by onboarding, not by a retailer's feed).
UPLOAD_KINDS = ("stores", "offers", "products")
# Ingests at once per worker: each keeps a core busy, and the machine has few.
INGESTS_AT_ONCE = 2
# A name for the report when the upload brought none (the API's raw body).
DEFAULT_NAME = "upload"
log = logging.getLogger("nearcart.uploads")
# One per event loop, as backoffice/passwords.py keeps its own.
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = weakref.WeakKeyDictionary()
# Background runs, kept referenced until they end (asyncio holds tasks only weakly).
_running: set[asyncio.Task[None]] = set()


class UploadTooLarge(Exception):
    """More bytes than the cap: nothing is kept."""


@dataclass(frozen=True, slots=True)
class Upload:
    id: int
    retailer_id: str
    kind: str
    uploaded_by: str
    bytes: int
    received_at: datetime
    finished_at: datetime | None
    status: str
    report: IngestReport | None

    @property
    def seconds(self) -> float | None:
        return (self.finished_at - self.received_at).total_seconds() if self.finished_at else None


@dataclass(frozen=True, slots=True)
class Spooled:
    path: Path
    size: int
    name: str


def spool_dir(settings: Settings) -> str:
    return settings.upload_dir or tempfile.gettempdir()


async def spool(chunks: AsyncIterator[bytes], settings: Settings, name: str = DEFAULT_NAME) -> Spooled:
    """The chunks written to a temporary file, which the caller removes (`discard`); `UploadTooLarge` past the cap."""
    cap = settings.feed_upload_max_bytes
    fd, raw_path = tempfile.mkstemp(prefix="nearcart-upload-", dir=spool_dir(settings))
    os.close(fd)
    file = Spooled(Path(raw_path), 0, _display_name(name))
    try:
        size = 0
        async with await anyio.open_file(file.path, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > cap:
                    raise UploadTooLarge
                if chunk:
                    await out.write(chunk)
    except BaseException:
        await discard(file)
        raise
    return Spooled(file.path, size, file.name)


async def discard(file: Spooled) -> None:
    await anyio.to_thread.run_sync(lambda: file.path.unlink(missing_ok=True))


def _display_name(name: str) -> str:
    """The uploaded file's own name as the report shows it: its last part, printable, at most 100 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable())[:100]
    return cleaned or DEFAULT_NAME


async def start_upload(pool: asyncpg.Pool, retailer_id: str, kind: str, uploaded_by: str, size: int) -> int:
    upload_id: int = await pool.fetchval(
        "INSERT INTO feed_uploads (retailer_id, kind, uploaded_by, bytes) VALUES ($1, $2, $3, $4) RETURNING id",
        retailer_id, kind, uploaded_by, size,
    )
    return upload_id


async def ingest_upload(settings: Settings, upload_id: int, retailer_id: str, kind: str, file: Spooled) -> IngestReport:
    """Ingest the spooled file as `retailer_id`'s feed, record the outcome in `feed_uploads`, return the report."""
    limiter = _limiters.setdefault(asyncio.get_running_loop(), anyio.CapacityLimiter(INGESTS_AT_ONCE))
    report: IngestReport = await anyio.to_thread.run_sync(
        lambda: asyncio.run(_ingest(settings, upload_id, retailer_id, kind, file)), limiter=limiter
    )
    return report


def ingest_in_background(settings: Settings, upload_id: int, retailer_id: str, kind: str, file: Spooled) -> None:
    """Start the ingest and return at once; the file is removed once the ingest is done with it."""

    async def run() -> None:
        try:
            await ingest_upload(settings, upload_id, retailer_id, kind, file)
        except Exception:
            # Nobody awaits this task: say it here. The upload shows as interrupted once it is stale.
            log.exception("feed upload %s of retailer %s stopped", upload_id, retailer_id)
        finally:
            await discard(file)

    task = asyncio.create_task(run(), name=f"nearcart-upload-{upload_id}")
    _running.add(task)
    task.add_done_callback(_running.discard)


async def _ingest(settings: Settings, upload_id: int, retailer_id: str, kind: str, file: Spooled) -> IngestReport:
    """In the ingest's own thread and loop: its own connections, as `nearcart ingest` opens them."""
    timeout = settings.database_timeout_s * 5
    conn = await asyncpg.connect(settings.database_url, timeout=timeout)
    try:
        try:
            async with primary_client(settings, packed=True) as redis:
                report = await ingest_files(
                    conn, redis, Keys(settings.redis_prefix), kind, [file.path],
                    connect=lambda: asyncpg.connect(settings.database_url, timeout=timeout),
                    options=FeedOptions(retailer=retailer_id),
                )
        except (*DATABASE_UNAVAILABLE, RedisError) as exc:
            # A service failed, not the input: rows up to the last committed batch are loaded; sending it again is safe.
            report = IngestReport(kind=kind, files=[str(file.path)], fatal=f"stopped: {type(exc).__name__}: {exc}")
        report = _named(report, str(file.path), file.name)
        status = "failed" if report.fatal else "rejected rows" if report.rows_rejected else "ok"
        await conn.execute(
            "UPDATE feed_uploads SET status = $2, finished_at = now(), report = $3::jsonb,"
            " run_id = (SELECT max(id) FROM feed_runs WHERE retailer_id = $4 AND kind = $5 AND $6 = ANY(files))"
            " WHERE id = $1",
            upload_id, status, msgspec.json.encode(report).decode(), retailer_id, kind, str(file.path),
        )
    finally:
        await conn.close()
    return report


def _named(report: IngestReport, spooled_as: str, name: str) -> IngestReport:
    """The report with the uploaded file's name where the temporary file's path was."""
    rejects = [msgspec.structs.replace(r, file=name) if r.file == spooled_as else r for r in report.rejects]
    fatal = report.fatal.replace(spooled_as, name) if report.fatal else None
    return msgspec.structs.replace(report, files=[name], rejects=rejects, fatal=fatal)


async def load_upload(
    settings: Settings, pool: asyncpg.Pool, retailer_id: str, kind: str, author: str, file: Spooled
) -> Upload:
    """Record the upload and ingest it: now when it is small (the file is removed after), else in the background."""
    upload_id = await start_upload(pool, retailer_id, kind, author, file.size)
    if file.size > settings.feed_upload_background_bytes:
        ingest_in_background(settings, upload_id, retailer_id, kind, file)
    else:
        try:
            await ingest_upload(settings, upload_id, retailer_id, kind, file)
        finally:
            await discard(file)
    upload = await find_upload(pool, retailer_id, upload_id)
    assert upload is not None  # inserted above, never deleted
    return upload


# A run still "running" after this long died with its worker (a restart, a crash): it is shown as interrupted.
# The largest upload loads in minutes; sending it again is safe (the same feed twice changes nothing).
STALE_AFTER_S = 6 * 3600
_UPLOAD_COLUMNS = (
    "id, retailer_id, kind, uploaded_by, bytes, received_at, finished_at,"
    f" CASE WHEN status = 'running' AND received_at < now() - interval '{STALE_AFTER_S} seconds'"
    " THEN 'interrupted' ELSE status END AS status, report::text AS report"
)


def _upload(row: asyncpg.Record) -> Upload:
    values = dict(row)
    values["report"] = msgspec.json.decode(values["report"], type=IngestReport) if values["report"] else None
    return Upload(**values)


async def find_upload(pool: asyncpg.Pool, retailer_id: str, upload_id: int) -> Upload | None:
    row = await pool.fetchrow(
        f"SELECT {_UPLOAD_COLUMNS} FROM feed_uploads WHERE id = $1 AND retailer_id = $2", upload_id, retailer_id
    )
    return _upload(row) if row is not None else None


async def recent_uploads(pool: asyncpg.Pool, retailer_id: str, limit: int = 50) -> list[Upload]:
    rows = await pool.fetch(
        f"SELECT {_UPLOAD_COLUMNS} FROM feed_uploads WHERE retailer_id = $1 ORDER BY id DESC LIMIT $2",
        retailer_id, limit,
    )
    return [_upload(row) for row in rows]
