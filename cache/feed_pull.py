"""`nearcart feeds pull`: fetch the retailers' feeds that are due and ingest the ones that changed.

Politeness: one request at a time per retailer host, and at least `host_delay_s` between two
requests to the same host; different hosts are fetched side by side. Ingests run one after the
other on the command's connection (offer writers serialise on the index lock anyway). A 304 is
recorded as a successful run that read nothing, so the feed's age restarts: our copy is current.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import asyncpg
import httpx
import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from cache.feed_download import DownloadError, download
from cache.feed_health import record_feed_health
from cache.formats.base import FeedOptions
from cache.ingest import ingest_files
from cache.ingest_report import IngestReport
from cache.keys import Keys
from cache.url_policy import fetch_url_error

# Downloads in flight at once (each to a different host).
PARALLEL_HOSTS = 4
_SUFFIXES = {".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json", ".xml", ".gz"}


@dataclass(frozen=True, slots=True)
class PullLimits:
    timeout_s: float = 300.0
    max_bytes: int = 2 * 1024**3
    host_delay_s: float = 2.0
    allow_http_loopback: bool = False


class PullResult(msgspec.Struct, kw_only=True):
    retailer_id: str
    kind: str
    url: str
    # 'ingested', 'rejected rows', 'not modified' or 'failed'.
    status: str
    detail: str = ""
    report: IngestReport | None = None

    def __str__(self) -> str:
        what = self.report.summary() if self.report is not None else self.detail
        return f"{self.retailer_id} {self.kind}: {self.status}" + (f": {what}" if what else "")


class DueFeed(msgspec.Struct, frozen=True):
    retailer_id: str
    kind: str
    url: str
    etag: str | None
    last_modified: str | None


_DUE = """
SELECT retailer_id, kind, url, etag, last_modified FROM retailer_feeds
WHERE last_pulled_at IS NULL OR last_pulled_at + interval_s * interval '1 second' <= now()
ORDER BY last_pulled_at NULLS FIRST, retailer_id, kind
"""


@dataclass
class _HostGate:
    """One request at a time per host, `delay_s` apart."""

    delay_s: float
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def turn(self, host: str) -> AsyncIterator[None]:
        async with self.locks.setdefault(host, asyncio.Lock()):
            wait = self.last.get(host, -1e9) + self.delay_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                yield
            finally:
                self.last[host] = time.monotonic()


async def pull_due(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    keys: Keys,
    limits: PullLimits,
    connect: Callable[[], Awaitable[asyncpg.Connection]] | None = None,
    on_result: Callable[[PullResult], None] | None = None,
) -> list[PullResult]:
    """Pull every feed that is due; one result per feed, in the order they finished."""
    due = [DueFeed(*row) for row in await conn.fetch(_DUE)]
    gate = _HostGate(limits.host_delay_s)
    ingesting = asyncio.Lock()
    slots = asyncio.Semaphore(PARALLEL_HOSTS)
    results: list[PullResult] = []

    async def one(feed: DueFeed, client: httpx.AsyncClient, workdir: Path) -> None:
        result = await _pull_one(conn, redis, keys, limits, feed, client, workdir, gate, slots, ingesting, connect)
        results.append(result)
        if on_result is not None:
            on_result(result)

    with tempfile.TemporaryDirectory(prefix="nearcart-pull-") as tmp:
        async with _client(limits) as client:
            await asyncio.gather(*(one(feed, client, Path(tmp)) for feed in due))
    return results


def _client(limits: PullLimits) -> httpx.AsyncClient:
    async def https_only(request: httpx.Request) -> None:
        # Every hop of a redirect too: a feed may move, but never to plain http.
        problem = fetch_url_error(str(request.url), limits.allow_http_loopback)
        if problem:
            raise httpx.UnsupportedProtocol(f"{request.url}: {problem}", request=request)

    return httpx.AsyncClient(
        timeout=httpx.Timeout(limits.timeout_s), follow_redirects=True, max_redirects=5,
        event_hooks={"request": [https_only]}, headers={"User-Agent": "nearcart-feeds/1 (+feeds pull)"},
    )


async def _pull_one(
    conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, limits: PullLimits, feed: DueFeed,
    client: httpx.AsyncClient, workdir: Path, gate: _HostGate, slots: asyncio.Semaphore, ingesting: asyncio.Lock,
    connect: Callable[[], Awaitable[asyncpg.Connection]] | None,
) -> PullResult:
    result = PullResult(retailer_id=feed.retailer_id, kind=feed.kind, url=feed.url, status="failed")
    dest = workdir / f"{feed.retailer_id}-{feed.kind}{_suffix(feed.url)}"
    problem = fetch_url_error(feed.url, limits.allow_http_loopback)
    try:
        if problem:
            raise DownloadError(problem)
        async with gate.turn(urlsplit(feed.url).hostname or ""), slots:
            got = await download(
                client, feed.url, dest, etag=feed.etag, last_modified=feed.last_modified,
                max_bytes=limits.max_bytes, timeout_s=limits.timeout_s,
            )
    except DownloadError as exc:
        result.detail = str(exc)
    else:
        async with ingesting:
            if not got.modified:
                result.status = "not modified"
                await _record_without_ingest(conn, feed, result)
                return result
            # The feed is this retailer's: rows that name no retailer are its own, rows naming another are refused.
            options = FeedOptions(retailer=feed.retailer_id)
            try:
                report = await ingest_files(conn, redis, keys, feed.kind, [dest], connect=connect, options=options)
            except RedisError as exc:
                # Redis failed, not the feed (IndexWritesLost among them: what was committed reaches the index
                # through the healer). No ETag kept: the next pull fetches and ingests it again.
                result.detail = f"Redis: {exc}"
                dest.unlink(missing_ok=True)
                await _record_without_ingest(conn, feed, result)
                return result
            result.report = report
            result.status = "failed" if report.fatal else "rejected rows" if report.rows_rejected else "ingested"
            dest.unlink(missing_ok=True)
            if report.fatal and report.run_id is not None:
                # A file that could not be used at all names no retailer in its rows: this feed's is known.
                await record_feed_health(conn, report.run_id, feed.kind, {feed.retailer_id: 0}, {}, stopped=True)
            await _save(conn, feed, result.status, got.etag if not report.fatal else None, got.last_modified)
            return result
    async with ingesting:
        await _record_without_ingest(conn, feed, result)
    return result


async def _record_without_ingest(conn: asyncpg.Connection, feed: DueFeed, result: PullResult) -> None:
    """A run for a pull that ingested nothing (a 304, a failed download): in the history and the feed's health."""
    failed = result.status == "failed"
    run_id = await conn.fetchval(
        "INSERT INTO feed_runs (kind, files, finished_at, status, rejects) VALUES ($1, $2, now(), $3, $4::jsonb)"
        " RETURNING id",
        feed.kind, [feed.url], result.status,
        msgspec.json.encode([{"error": result.detail}] if failed else []).decode(),
    )
    await record_feed_health(conn, run_id, feed.kind, {feed.retailer_id: 0}, {}, stopped=failed)
    if failed:
        await _save(conn, feed, result.detail[:200], feed.etag, feed.last_modified)
    else:
        await _save(conn, feed, result.status, feed.etag, feed.last_modified)


async def _save(conn: asyncpg.Connection, feed: DueFeed, status: str, etag: str | None, modified: str | None) -> None:
    await conn.execute(
        "UPDATE retailer_feeds SET last_pulled_at = now(), last_status = $3, etag = $4, last_modified = $5"
        " WHERE retailer_id = $1 AND kind = $2",
        feed.retailer_id, feed.kind, status, etag, modified,
    )


def _suffix(url: str) -> str:
    """The URL's file suffixes when they name a feed format (`offers.tsv.gz`), else `.csv`."""
    suffixes = [s.lower() for s in PurePosixPath(urlsplit(url).path).suffixes if s.lower() in _SUFFIXES]
    return "".join(suffixes[-2:]) or ".csv"


async def set_feed(conn: asyncpg.Connection, retailer_id: str, kind: str, url: str, interval_s: int,
                   allow_http_loopback: bool = False) -> str | None:
    """Add or change a retailer's pulled feed; the reason it was refused, or None."""
    problem = fetch_url_error(url, allow_http_loopback)
    if problem:
        return f"url: {problem}"
    if interval_s < 60:
        return "interval: at least 60 seconds"
    if not await conn.fetchval("SELECT 1 FROM retailers WHERE retailer_id = $1", retailer_id):
        return f"retailer: no retailer {retailer_id!r}"
    await conn.execute(
        "INSERT INTO retailer_feeds (retailer_id, kind, url, interval_s) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (retailer_id, kind) DO UPDATE SET url = excluded.url, interval_s = excluded.interval_s,"
        " etag = CASE WHEN retailer_feeds.url = excluded.url THEN retailer_feeds.etag END,"
        " last_modified = CASE WHEN retailer_feeds.url = excluded.url THEN retailer_feeds.last_modified END",
        retailer_id, kind, url, interval_s,
    )
    return None
