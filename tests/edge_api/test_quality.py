"""Data quality per retailer: each figure `nearcart quality check` computes, its gauges on /metrics, and the
offers a retailer who hides unconfirmed ones no longer shows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import msgspec
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from benchmarks.fake_retailer import FakeRetailer, stall, status
from cache.index import build_index
from cache.ingest import ingest_files
from cache.keys import MODE_BITS, Keys
from cache.quality import RetailerQuality
from edge_api.app import create_app
from edge_api.commands.quality import run_quality_command
from edge_api.quality_check import check_quality
from edge_api.settings import Settings
from tests.cache.test_ingest import OFFER_HEADER, write

G1, G2 = "03017620422003", "00000096385074"
NOW = datetime.now(UTC)


@pytest.fixture
def shop() -> Iterator[FakeRetailer]:
    with FakeRetailer() as server:
        yield server


@pytest.fixture
def loopback(settings: Settings) -> Settings:
    # No basket link fetched but where a test serves them (the default templates name no real host).
    return msgspec.structs.replace(
        settings, allow_http_loopback=True, link_timeout_s=0.5, quality_cache_s=0.0, links_per_retailer=0
    )


@pytest.fixture
def linked(loopback: Settings) -> Settings:
    return msgspec.structs.replace(loopback, links_per_retailer=10)


async def add_retailer(db: asyncpg.Connection, retailer: str, template: str = "", hide: bool = False) -> None:
    await db.execute(
        "INSERT INTO retailers (retailer_id, name, cart_url_template, delivery_countries, unconfirmed_offers)"
        " VALUES ($1, $2, $3, '{FR}', $4)",
        retailer, retailer.title(), template or f"https://{retailer}.example/cart?add={{gtin}}",
        "hide" if hide else "show",
    )
    await db.execute(
        "INSERT INTO stores (retailer_id, store_id, name, country, lat, lon)"
        " VALUES ($1, 'paris', $2, 'FR', 48.85, 2.35)",
        retailer, f"{retailer.title()} Paris",
    )


async def add_offer(db: asyncpg.Connection, retailer: str, gtin: str, price: str, age: timedelta = timedelta(0),
                    quantity: int = 5, store: str = "paris", modes: int = MODE_BITS["in_store"]) -> None:
    await db.execute(
        "INSERT INTO products (gtin) VALUES ($1) ON CONFLICT DO NOTHING", gtin,
    )
    await db.execute(
        "INSERT INTO offers (retailer_id, store_id, gtin, price, currency, quantity, modes, updated_at)"
        " VALUES ($1, $2, $3, $4, 'EUR', $5, $6, $7)",
        retailer, store, gtin, Decimal(price), quantity, modes, NOW - age,
    )


def by_id(figures: list[RetailerQuality]) -> dict[str, RetailerQuality]:
    return {q.retailer_id: q for q in figures}


async def test_offers_not_updated_within_the_threshold_are_unconfirmed(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, loopback: Settings
) -> None:
    await add_retailer(db, "late")
    await add_offer(db, "late", G1, "2.00", age=timedelta(hours=49))
    await add_offer(db, "late", G2, "2.00", age=timedelta(hours=47))
    # Out of stock: never shown, so never shown unconfirmed either.
    await add_offer(db, "late", "00000000000017", "2.00", age=timedelta(days=9), quantity=0)
    figures = by_id(await check_quality(db, redis, keys, loopback))
    assert (figures["late"].offers, figures["late"].offers_unconfirmed) == (2, 1)


async def test_prices_beyond_three_times_or_below_a_third_of_the_median_are_outliers(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, loopback: Settings
) -> None:
    prices = {"a": "2.00", "b": "2.10", "c": "1.90", "near": "5.90", "dear": "6.50", "cheap": "0.60"}
    for retailer, price in prices.items():
        await add_retailer(db, retailer)
        await add_offer(db, retailer, G1, price)  # median of the six: 2.05
    # Two retailers only: no median says which of them is wrong.
    await add_offer(db, "a", G2, "1.00")
    await add_offer(db, "b", G2, "9.00")
    figures = by_id(await check_quality(db, redis, keys, loopback))
    assert {r: q.price_outliers for r, q in figures.items()} == {
        "a": 0, "b": 0, "c": 0, "near": 0, "dear": 1, "cheap": 1,
    }


async def test_basket_links_fail_on_errors_timeouts_and_redirects_to_another_host(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, linked: Settings, shop: FakeRetailer
) -> None:
    shop.serve("/ok/", status(200))
    shop.serve("/gone/", status(404))
    shop.serve("/slow/", stall(2.0, status(200)))
    shop.serve("/moved/", status(302, "https://parked-domain.example/"))
    shop.serve("/login/", status(302, "/account/login?next=basket"))
    for path in ("ok", "gone", "slow", "moved", "login"):
        await add_retailer(db, path, f"{shop.base}/{path}/cart?add={{gtin}}&store={{store_id}}")
        await add_offer(db, path, G1, "2.00")
        await add_offer(db, path, G2, "3.00")
    figures = by_id(await check_quality(db, redis, keys, linked))
    failing = {r: (q.links_failing, q.links_checked) for r, q in figures.items()}
    assert failing == {"ok": (0, 2), "gone": (2, 2), "slow": (2, 2), "moved": (2, 2), "login": (0, 2)}
    assert figures["gone"].link_failures[0].reason == "HTTP 404"
    assert figures["slow"].link_failures[0].reason == "no answer within 0.5 s"
    assert "another host (parked-domain.example)" in figures["moved"].link_failures[0].reason
    assert figures["ok"].link_failures == [] and figures["gone"].links_failing_ratio == 1.0
    # The links are the ones a click would open: the template filled with the offer.
    assert {s.path for s in shop.seen} >= {"/ok/cart", "/gone/cart"}
    assert any(s.path == "/ok/cart" for s in shop.seen)


async def test_rejected_share_of_the_last_run_and_its_trend_per_retailer_and_kind(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, loopback: Settings, tmp_path: Path
) -> None:
    await add_retailer(db, "shop")
    await add_retailer(db, "neat")
    good = "".join(f"shop,paris,{G1},2.{n:02d},EUR,5,in_store,2024-06-01T10:00:{n:02d}Z\n" for n in range(10))
    neat = "".join(f"neat,paris,{G1},2.{n:02d},EUR,5,in_store,2024-06-01T10:00:{n:02d}Z\n" for n in range(10))
    await ingest_files(db, redis, keys, "offers", [write(tmp_path, "a.csv", OFFER_HEADER + good + neat)])
    bad = "shop,paris,12345,2.00,EUR,5,in_store,2024-06-02T10:00:00Z\n" * 3
    second = good.replace("2024-06-01", "2024-06-02")[: -len(good) // 10 * 3] + bad
    report = await ingest_files(db, redis, keys, "offers", [write(tmp_path, "b.csv", OFFER_HEADER + second)])
    assert report.rows_rejected == 3 and report.rows_read == 10
    figures = by_id(await check_quality(db, redis, keys, loopback))
    [offers] = figures["shop"].feeds
    assert (offers.kind, offers.rejected_ratio, offers.rejected_trend) == ("offers", 0.3, pytest.approx(0.3))
    # The second run named no row of neat's: its figures stay those of its last run.
    assert [(f.kind, f.rejected_ratio) for f in figures["neat"].feeds] == [("offers", 0.0)]
    assert figures["shop"].feeds[0].age_s < 60


async def test_stores_placed_approximately_are_counted(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, loopback: Settings
) -> None:
    await add_retailer(db, "vague")
    await db.execute(
        "INSERT INTO stores (retailer_id, store_id, name, country, lat, lon, approximate)"
        " VALUES ('vague', 'lyon', 'Lyon', 'FR', 45.76, 4.83, true)"
    )
    figures = by_id(await check_quality(db, redis, keys, loopback))
    assert (figures["vague"].stores, figures["vague"].stores_approximate) == (2, 1)


def _offer_stores(client: TestClient, gtin: str) -> list[str]:
    answer = client.get("/v1/offers", params={"gtin": gtin, "lat": 48.85, "lon": 2.35, "modes": "in_store"})
    assert answer.status_code == 200, answer.text
    return sorted(o["retailer"]["id"] for o in answer.json()["offers"])


async def test_a_retailer_hiding_unconfirmed_offers_stops_showing_them_until_its_feed_confirms_them(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, loopback: Settings, tmp_path: Path
) -> None:
    await add_retailer(db, "careful", hide=True)
    await add_retailer(db, "relaxed")
    for retailer in ("careful", "relaxed"):
        await add_offer(db, retailer, G1, "2.00", age=timedelta(days=3))
        await add_offer(db, retailer, G2, "2.00", age=timedelta(hours=1))
    await build_index(db, redis, keys, grace_s=0)
    settings = msgspec.structs.replace(loopback, micro_cache_ttl_s=0.0, micro_cache_live_ttl_s=0.0)
    with TestClient(create_app(settings)) as client:
        assert _offer_stores(client, G1) == ["careful", "relaxed"]
        figures = by_id(await check_quality(db, redis, keys, settings))
        assert figures["careful"].offers_unconfirmed == figures["relaxed"].offers_unconfirmed == 1
        assert _offer_stores(client, G1) == ["relaxed"]
        assert _offer_stores(client, G2) == ["careful", "relaxed"]  # its confirmed offers stay
        # A rebuild of the whole index leaves it out too.
        # The worker moves to the new version within its refresh period, well within the old one's 3 s of grace.
        await build_index(db, redis, keys, grace_s=3.0)
        assert _offer_stores(client, G1) == ["relaxed"]
        # Its feed sends the offer again (same price and stock, a new time): the next check shows it again.
        again = f"careful,paris,{G1},2.00,EUR,5,in_store,{datetime.now(UTC).isoformat()}\n"
        await ingest_files(db, redis, keys, "offers", [write(tmp_path, "again.csv", OFFER_HEADER + again)])
        await check_quality(db, redis, keys, settings)
        assert _offer_stores(client, G1) == ["careful", "relaxed"]
        assert await db.fetchval("SELECT count(*) FROM offers_unconfirmed WHERE hidden") == 0


def _gauges(text: str, name: str) -> dict[str, float]:
    """The samples of gauge `name` by their labels' values (`retailer` or `retailer/kind`)."""
    [family] = [f for f in text_string_to_metric_families(text) if f.name == name]
    return {"/".join(s.labels[k] for k in ("retailer", "kind") if k in s.labels): s.value for s in family.samples}


async def test_the_gauges_on_metrics_are_the_stored_figures_read_at_most_once_per_cache_period(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, linked: Settings, shop: FakeRetailer
) -> None:
    shop.serve("/gone/", status(404))
    await add_retailer(db, "dead", f"{shop.base}/gone/{{gtin}}")
    await add_retailer(db, "fine")
    await add_offer(db, "dead", G1, "2.00", age=timedelta(days=3))
    await db.execute("INSERT INTO retailer_feed_health (retailer_id, kind, last_run_at, last_success_at,"
                     " rejected_ratio) VALUES ('dead', 'offers', now(), now() - interval '30 hours', 0.25)")
    await check_quality(db, redis, keys, linked)
    cached = msgspec.structs.replace(linked, quality_cache_s=3600.0)
    with TestClient(create_app(cached)) as client:
        text = client.get("/metrics").text
        assert _gauges(text, "nearcart_offers_unconfirmed") == {"dead": 1.0, "fine": 0.0}
        assert _gauges(text, "nearcart_basket_links_failing")["dead"] == 1.0
        assert _gauges(text, "nearcart_feed_rejected_ratio") == {"dead/offers": 0.25}
        [age] = _gauges(text, "nearcart_feed_age_seconds").values()
        assert 30 * 3600 <= age < 30 * 3600 + 60
        assert set(_gauges(text, "nearcart_stores_approximate")) == {"dead", "fine"}
        assert set(_gauges(text, "nearcart_price_outliers")) == {"dead", "fine"}
        # Within the cache period a scrape reads no new figures...
        await db.execute("UPDATE retailer_quality SET offers_unconfirmed = 7 WHERE retailer_id = 'dead'")
        assert _gauges(client.get("/metrics").text, "nearcart_offers_unconfirmed")["dead"] == 1.0
    # ...and a worker whose period is over shows them.
    with TestClient(create_app(linked)) as client:
        assert _gauges(client.get("/metrics").text, "nearcart_offers_unconfirmed")["dead"] == 7.0


async def test_the_quality_command_prints_every_retailer_worst_first(
    db: asyncpg.Connection, loopback: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await add_retailer(db, "aaa-fine")
    await add_retailer(db, "zzz-late")
    await add_offer(db, "zzz-late", G1, "2.00", age=timedelta(days=3))
    await add_offer(db, "aaa-fine", G1, "2.00")
    assert await run_quality_command(loopback) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["retailer", "offers", "unconfirmed"]
    assert [line.split()[0] for line in lines[1:]] == ["zzz-late", "aaa-fine"]
    assert lines[1].split()[1:3] == ["1", "1"]
