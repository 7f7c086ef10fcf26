"""`nearcart feeds pull` against a retailer server on loopback: a feed that changes, stalls, or lies about its size."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import msgspec
import pytest
import redis.asyncio as aioredis

from benchmarks.fake_retailer import FakeRetailer, Feed, endless, lying_length, stall
from cache.embedded import free_port
from cache.feed_pull import PullLimits, PullResult, pull_due, set_feed
from cache.index import build_index
from cache.index_generation import index_behind
from cache.keys import Keys
from edge_api.commands.feeds import run_pull_command
from edge_api.settings import Settings
from tests.cache.test_ingest import OFFER_HEADER, load_catalog, near_paris, store_offers

LOOPBACK = PullLimits(timeout_s=5.0, max_bytes=1024 * 1024, host_delay_s=0.0, allow_http_loopback=True)
FIRST = OFFER_HEADER + "bigbox,paris-9,3017620422003,3.10,EUR,40,in_store,2024-06-01T10:00:00+02:00\n"
CHANGED = OFFER_HEADER + "bigbox,paris-9,3017620422003,2.50,EUR,12,in_store,2024-06-02T10:00:00+02:00\n"


@pytest.fixture
def shop() -> Iterator[FakeRetailer]:
    with FakeRetailer() as server:
        yield server


@pytest.fixture
async def catalog(db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path) -> None:
    await load_catalog(db, redis, keys, tmp_path)
    await build_index(db, redis, keys, grace_s=0)


async def _pull(db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys,
                limits: PullLimits = LOOPBACK) -> list[PullResult]:
    return await pull_due(db, redis, keys, limits)


async def _due_again(db: asyncpg.Connection) -> None:
    await db.execute("UPDATE retailer_feeds SET last_pulled_at = now() - interval '2 hours'")


async def _health(db: asyncpg.Connection, retailer: str = "bigbox") -> asyncpg.Record:
    return await db.fetchrow(
        "SELECT last_run_at, last_success_at FROM retailer_feed_health WHERE retailer_id = $1 AND kind = 'offers'",
        retailer,
    )


async def test_a_changed_feed_is_ingested_and_an_unchanged_one_costs_a_304_only(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, catalog: None, shop: FakeRetailer
) -> None:
    feed = Feed(FIRST.encode())
    url = shop.serve("/feeds/offers.csv", feed)
    assert await set_feed(db, "bigbox", "offers", url, 3600, allow_http_loopback=True) is None

    [first] = await _pull(db, redis, keys)
    assert first.status == "ingested" and first.report is not None and first.report.rows_loaded == 1
    assert ("paris-9", 310, 40) in store_offers(await near_paris(redis, keys))
    # Pulled a moment ago: not due again before its interval.
    assert await _pull(db, redis, keys) == []

    await _due_again(db)
    [unchanged] = await _pull(db, redis, keys)
    assert unchanged.status == "not modified"
    conditional = shop.requests_to("/feeds/offers.csv")[-1].headers
    assert conditional["if-none-match"] == '"v0"' and "if-modified-since" in conditional
    runs = await db.fetch("SELECT status, rows_read FROM feed_runs WHERE files = $1 ORDER BY id", [url])
    assert [tuple(r) for r in runs] == [("not modified", 0)]
    health = await _health(db)
    assert health["last_success_at"] == health["last_run_at"]  # our copy is current: the feed's age restarts

    feed.change(CHANGED.encode())
    await _due_again(db)
    [changed] = await _pull(db, redis, keys)
    assert changed.status == "ingested"
    assert ("paris-9", 250, 12) in store_offers(await near_paris(redis, keys))
    assert await db.fetchval("SELECT etag FROM retailer_feeds") == '"v1"'


async def test_a_stalled_server_times_out_and_the_feed_keeps_its_last_success(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, catalog: None, shop: FakeRetailer
) -> None:
    url = shop.serve("/stalls.csv", stall(2.0))
    await set_feed(db, "bigbox", "offers", url, 3600, allow_http_loopback=True)
    loaded = (await _health(db))["last_success_at"]  # the catalog's offers feed named bigbox
    [result] = await _pull(db, redis, keys, dataclasses.replace(LOOPBACK, timeout_s=0.5))
    assert result.status == "failed" and result.detail.startswith("timeout")
    assert (await db.fetchval("SELECT last_status FROM retailer_feeds")).startswith("timeout")
    health = await _health(db)
    assert health["last_success_at"] == loaded and health["last_run_at"] > loaded
    assert await db.fetchval("SELECT status FROM feed_runs WHERE files = $1", [url]) == "failed"


@pytest.mark.parametrize(
    ("announced", "why"),
    [
        # The server closes before the bytes it announced: the body is incomplete.
        (len(FIRST) + 100, "RemoteProtocolError"),
        # It announces fewer bytes than it sends: HTTP reads no further, the last row is cut in two.
        (len(FIRST) - 7, "body cut off"),
    ],
    ids=["longer", "shorter"],
)
async def test_a_body_that_disagrees_with_its_content_length_is_not_ingested(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, catalog: None, shop: FakeRetailer,
    announced: int, why: str,
) -> None:
    url = shop.serve("/lies.csv", lying_length(FIRST.encode(), announced))
    await set_feed(db, "bigbox", "offers", url, 3600, allow_http_loopback=True)
    before = await db.fetchval("SELECT price FROM offers WHERE retailer_id = 'bigbox' AND gtin = '03017620422003'")
    [result] = await _pull(db, redis, keys)
    assert result.status == "failed" and why in result.detail, result.detail
    after = await db.fetchval("SELECT price FROM offers WHERE retailer_id = 'bigbox' AND gtin = '03017620422003'")
    assert after == before
    # No validator kept from a body that was refused: the next pull fetches it whole again.
    assert await db.fetchval("SELECT etag FROM retailer_feeds") is None


async def test_a_feed_beyond_the_size_cap_is_stopped_at_the_cap(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, catalog: None, shop: FakeRetailer
) -> None:
    row = b"bigbox,paris-9,3017620422003,3.10,EUR,40,in_store,2024-06-01T10:00:00+02:00\n"
    unannounced = shop.serve("/huge.csv", endless(row * 100, 50 * 1024 * 1024))
    announced = shop.serve("/announced.csv", lying_length(b"x" * 10, 10 * 1024 * 1024))
    await set_feed(db, "bigbox", "offers", unannounced, 3600, allow_http_loopback=True)
    await set_feed(db, "shopco", "offers", announced, 3600, allow_http_loopback=True)
    limits = PullLimits(timeout_s=10, max_bytes=64 * 1024, host_delay_s=0, allow_http_loopback=True)
    results = {r.retailer_id: r for r in await _pull(db, redis, keys, limits)}
    assert results["bigbox"].status == "failed" and "over" not in results["bigbox"].detail
    assert "larger than the 65,536-byte cap" in results["bigbox"].detail
    assert results["shopco"].status == "failed"
    assert "announces 10,485,760 bytes, over the 65,536-byte cap" in results["shopco"].detail
    assert await db.fetchval("SELECT count(*) FROM feed_runs WHERE status = 'failed'") == 2


async def test_one_request_at_a_time_per_host_with_a_pause_between(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, catalog: None, shop: FakeRetailer
) -> None:
    slow = stall(0.3, Feed(FIRST.encode()))
    for retailer, kind in (("bigbox", "offers"), ("shopco", "offers"), ("bigbox", "stores")):
        url = shop.serve(f"/{retailer}/{kind}.csv", slow)
        await set_feed(db, retailer, kind, url, 3600, allow_http_loopback=True)
    limits = PullLimits(timeout_s=10, max_bytes=1024 * 1024, host_delay_s=0.2, allow_http_loopback=True)
    await _pull(db, redis, keys, limits)
    seen = sorted(shop.seen, key=lambda s: s.started)
    assert len(seen) == 3
    for before, after in zip(seen, seen[1:], strict=False):
        assert after.started - before.finished >= 0.2 - 0.02, "requests to one host overlapped or came too soon"


async def test_plain_http_is_refused_unless_loopback_is_allowed_for_tests(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, catalog: None, shop: FakeRetailer
) -> None:
    url = shop.serve("/feed.csv", Feed(FIRST.encode()))
    assert await set_feed(db, "bigbox", "offers", url, 3600) == "url: must be an https URL"
    assert await set_feed(db, "bigbox", "offers", "ftp://x.example/f.csv", 3600) == "url: must be an https URL"
    assert await set_feed(db, "nobody", "offers", "https://x.example/f.csv", 3600) == "retailer: no retailer 'nobody'"
    assert await set_feed(db, "bigbox", "offers", url, 3600, allow_http_loopback=True) is None
    # Saved while tests allowed it; a production pull (no allowance) still refuses to fetch it.
    [result] = await _pull(db, redis, keys, PullLimits(allow_http_loopback=False))
    assert result.status == "failed" and result.detail == "must be an https URL"
    assert shop.seen == []


async def test_the_pull_command_exits_1_when_a_feed_failed_and_0_when_all_were_fine(
    settings: Settings, db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, catalog: None,
    shop: FakeRetailer, capsys: pytest.CaptureFixture[str],
) -> None:
    loopback = msgspec.structs.replace(settings, allow_http_loopback=True, feed_host_delay_s=0.0)
    good = shop.serve("/good.csv", Feed(FIRST.encode()))
    await set_feed(db, "bigbox", "offers", good, 3600, allow_http_loopback=True)
    assert await run_pull_command(loopback) == 0
    await set_feed(db, "shopco", "offers", shop.base + "/missing.csv", 3600, allow_http_loopback=True)
    assert await run_pull_command(loopback) == 1
    out = capsys.readouterr().out
    assert "bigbox offers: ingested" in out and "shopco offers: failed: HTTP 404" in out


async def test_a_pull_whose_redis_fails_is_a_failed_run_fetched_again_next_time(
    settings: Settings, db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, catalog: None,
    shop: FakeRetailer, capsys: pytest.CaptureFixture[str],
) -> None:
    url = shop.serve("/feeds/offers.csv", Feed(CHANGED.encode()))
    await set_feed(db, "bigbox", "offers", url, 3600, allow_http_loopback=True)
    success_before = (await _health(db))["last_success_at"]
    nowhere = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}", socket_connect_timeout=0.2)
    try:
        [result] = await _pull(db, nowhere, keys)
    finally:
        await nowhere.aclose()
    assert result.status == "failed" and result.detail.startswith("Redis: ")
    assert await db.fetchval("SELECT etag FROM retailer_feeds") is None  # not kept: fetched again next time
    health = await _health(db)
    assert health["last_success_at"] == success_before < health["last_run_at"]  # a failed run: the feed ages on
    # PostgreSQL took the rows before Redis failed: the index is behind, which the API's healer repairs.
    assert await index_behind(db, redis, keys) is not None
    await build_index(db, redis, keys, grace_s=0)  # what the healer runs
    assert ("paris-9", 250, 12) in store_offers(await near_paris(redis, keys))
    await _due_again(db)
    [again] = await _pull(db, redis, keys)
    assert again.status == "ingested" and await index_behind(db, redis, keys) is None


async def test_a_pulled_feed_is_its_retailers_own_whatever_its_rows_say(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, catalog: None, shop: FakeRetailer
) -> None:
    # A Google Business Profile sheet names no retailer: the feed's owner is the retailer.
    sheet = (
        "Store code,Business name,Address line 1,Postal code,Locality,Country / Region,Latitude,Longitude\n"
        "BERCY-2,Big Box Bercy 2,10 quai de Bercy,75012,Paris,FR,48.8335,2.3865\n"
        "NATION,Big Box Nation,1 place de la Nation,75011,Paris,FR,,\n"
    )
    await set_feed(db, "bigbox", "stores", shop.serve("/gbp.csv", Feed(sheet.encode())), 3600,
                   allow_http_loopback=True)
    # nearcart's own CSV with a row naming another retailer: refused, never written.
    sneaky = FIRST + "shopco,paris-1,3017620422003,0.01,EUR,999,in_store,2024-06-01T10:00:00+02:00\n"
    await set_feed(db, "bigbox", "offers", shop.serve("/sneaky.csv", Feed(sneaky.encode())), 3600,
                   allow_http_loopback=True)
    results = {r.kind: r for r in await _pull(db, redis, keys)}
    assert results["stores"].status == "ingested", results["stores"]
    placed = await db.fetch("SELECT store_id, approximate FROM stores WHERE retailer_id = 'bigbox' ORDER BY 1")
    assert [tuple(r) for r in placed] == [("BERCY-2", False), ("NATION", True), ("paris-9", False)]
    offers = results["offers"]
    assert offers.status == "rejected rows" and offers.report is not None
    [reject] = offers.report.rejects
    assert (reject.line, reject.field) == (3, "retailer_id") and "shopco" in reject.reason
    assert await db.fetchval("SELECT price FROM offers WHERE retailer_id = 'shopco' AND store_id = 'paris-1'"
                             " AND gtin = '03017620422003'") != 0.01
    # The refused row counts against the feed's owner: 1 of its 2 rows.
    ratio = await db.fetchval("SELECT rejected_ratio FROM retailer_feed_health WHERE retailer_id = 'bigbox'"
                              " AND kind = 'offers'")
    assert ratio == 0.5


async def test_a_feed_without_a_final_line_end_loads_when_no_length_was_announced(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, catalog: None, shop: FakeRetailer
) -> None:
    # Spreadsheet exports end their last row without a newline; sent without a Content-Length, nothing was cut.
    body = CHANGED.rstrip("\n").encode()
    await set_feed(db, "bigbox", "offers", shop.serve("/sheet.csv", endless(body, len(body))), 3600,
                   allow_http_loopback=True)
    [result] = await _pull(db, redis, keys)
    assert result.status == "ingested", result
    assert ("paris-9", 250, 12) in store_offers(await near_paris(redis, keys))
