"""The example feeds in docs/feeds/, in the formats retailers already have, ingested, then asked for.

Each test loads real-looking files as `nearcart ingest` would (ingest_files with the CLI's options),
checks the per-row report (line, field, reason) and what /v1/offers answers afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from starlette.testclient import TestClient

from cache.formats.base import FeedOptions
from cache.index import build_index
from cache.ingest import ingest_files
from cache.ingest_report import IngestReport
from cache.keys import Keys
from edge_api.app import create_app
from edge_api.commands.ingest import run_ingest_command
from edge_api.settings import Settings

FEEDS = Path(__file__).parents[2] / "docs" / "feeds"
# The inventories' time (Google's files carry none): inside the Bercy sale, after the Batignolles one.
AS_OF = datetime(2026, 12, 3, 9, 0, tzinfo=timezone(timedelta(hours=1)))
LUMIERE = FeedOptions(retailer="epicerie-lumiere", as_of=AS_OF)
BRICOBELLE = FeedOptions(retailer="bricobelle")
NUTELLA = "03017620422003"
RIVOLI = {"lat": 48.8558, "lon": 2.3561, "radius_km": 5, "country": "FR"}


async def ingest(db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, kind: str, name: str,
                 options: FeedOptions | None = None) -> IngestReport:
    return await ingest_files(db, redis, keys, kind, [FEEDS / name], options=options)


def rejected(report: IngestReport) -> list[tuple[int, str, str]]:
    return [(r.line, r.field, r.reason) for r in report.rejects]


def offers(client: TestClient, gtin: str, **where: Any) -> list[tuple[str, str, str, str, bool]]:
    """(mode, store id or '', price, availability, approximate) of each offer, as the shopper gets them."""
    body = client.get("/v1/offers", params={"gtin": gtin, **where}).json()
    return sorted((o["mode"], (o["store"] or {}).get("id", ""), o["price"]["amount"], o["availability"],
                   (o["store"] or {}).get("approximate", False)) for o in body["offers"])


@pytest.fixture
async def lumiere(db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys) -> dict[str, IngestReport]:
    """Épicerie Lumière's stores (Business Profile sheet) and item map (Google product feed) loaded."""
    assert (await ingest(db, redis, keys, "retailers", "retailers.csv")).exit_code == 0
    return {
        "stores": await ingest(db, redis, keys, "stores", "gbp_stores.csv", LUMIERE),
        "products": await ingest(db, redis, keys, "products", "google_products.tsv", LUMIERE),
    }


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


async def test_business_profile_sheet_places_stores_and_reports_the_bad_ones(
    db: asyncpg.Connection, lumiere: dict[str, IngestReport]
) -> None:
    report = lumiere["stores"]
    assert rejected(report) == [
        (10, "lat", "missing, and no postal code: give lat and lon"),
        (11, "store_id", "missing"),
        (12, "country", '"Frankreich" is not an ISO 3166 country code'),
    ]
    assert (report.rows_read, report.rows_loaded) == (11, 8)
    stores = {r["store_id"]: r for r in await db.fetch("SELECT * FROM stores")}
    assert {s for s, r in stores.items() if r["approximate"]} == {"PAR-BERCY", "LYO-CROIXROUSSE", "BRU-LOUISE"}
    assert stores["PAR-BERCY"]["address"] == "9 quai de Bercy, Cour Saint-Émilion"
    assert 48.80 < stores["PAR-BERCY"]["lat"] < 48.87 and 2.36 < stores["PAR-BERCY"]["lon"] < 2.45  # Paris 12e
    assert (stores["LIL-CENTRE"]["lat"], stores["LIL-CENTRE"]["lon"]) == (50.6365, 3.0635)  # "50,6365" in the sheet


async def test_product_feed_maps_item_ids_and_refuses_items_without_a_valid_gtin(
    db: asyncpg.Connection, lumiere: dict[str, IngestReport]
) -> None:
    assert rejected(lumiere["products"]) == [
        (12, "gtin", "missing for item 'EL-SAC-KRAFT': its offers cannot be shown"),
        (13, "gtin", '"3221100000608" is not a GTIN: check digit should be 9'),
    ]
    items = dict(await db.fetch("SELECT item_id, gtin FROM retailer_items WHERE retailer_id = 'epicerie-lumiere'"))
    assert len(items) == 11 and items["EL-100234"] == NUTELLA


async def test_google_inventory_tsv_gives_the_offers_shoppers_see(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, settings: Settings, lumiere: dict[str, IngestReport]
) -> None:
    report = await ingest(db, redis, keys, "offers", "google_inventory.tsv", LUMIERE)
    assert rejected(report) == [
        (10, "id", 'item id "EL-999999" has no gtin in the product feed'),
        (11, "price", '"2.89" is not an amount and currency like 3.75 EUR'),
        (12, "store_id", 'unknown store "PAR-OPERA" of retailer "epicerie-lumiere"'),
        (16, "availability", '"available" is not one of in stock, limited availability, out of stock, '
                             "on display to order"),
    ]
    assert report.rows_loaded == 12
    await build_index(db, redis, keys, grace_s=0)
    with TestClient(create_app(settings)) as client:
        # Bercy: its sale runs on the feed's day; Batignolles': over, and pickup in weeks is no click & collect.
        assert offers(client, NUTELLA, **RIVOLI) == [
            ("click_collect", "PAR-BERCY", "2.99", "in_stock", True),
            ("click_collect", "PAR-RIVOLI", "3.75", "in_stock", False),
            ("in_store", "PAR-BATIGNOLLES", "3.79", "in_stock", False),
            ("in_store", "PAR-BERCY", "2.99", "in_stock", True),
            ("in_store", "PAR-RIVOLI", "3.75", "in_stock", False),
        ]
        # limited availability shows as low stock; without pickup_method, in store only.
        assert offers(client, "7622210449283", **RIVOLI) == [("in_store", "PAR-RIVOLI", "2.15", "low_stock", False)]
        # out of stock and on display to order are not offered; an id that is a GTIN needs no mapping.
        assert offers(client, "3083680045872", **RIVOLI) == []
        assert offers(client, "7613039116609", **RIVOLI) == []
        assert offers(client, "3017620403026", **RIVOLI) == [("in_store", "PAR-BATIGNOLLES", "2.45", "in_stock", False)]
        lyon = offers(client, NUTELLA, lat=45.7640, lon=4.8357, radius_km=5, modes="in_store")
        assert lyon == [("in_store", "LYO-BELLECOUR", "3.69", "in_stock", False),
                        ("in_store", "LYO-CROIXROUSSE", "3.69", "low_stock", True)]


async def test_google_inventory_xml_gives_the_offers_shoppers_see(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, settings: Settings, lumiere: dict[str, IngestReport]
) -> None:
    report = await ingest(db, redis, keys, "offers", "google_inventory.xml", LUMIERE)
    assert rejected(report) == [
        (37, "sale_price_effective_date", '"next week" is not an ISO 8601 interval start/end, like'
                                          " 2024-05-01T00:00+02:00/2024-05-08T00:00+02:00"),
        (45, "store_code", "missing"),
        (50, "id", 'item id "EL-SAC-KRAFT" has no gtin in the product feed'),
    ]
    await build_index(db, redis, keys, grace_s=0)
    lyon = {"lat": 45.7640, "lon": 4.8357, "radius_km": 5}
    with TestClient(create_app(settings)) as client:
        assert offers(client, "5410041000061", **lyon, modes="in_store") == [
            ("in_store", "LYO-BELLECOUR", "2.29", "low_stock", False),  # on sale, limited_availability
            ("in_store", "LYO-CROIXROUSSE", "2.89", "in_stock", True),
        ]
        assert offers(client, "3274080005003", **lyon) == [
            ("click_collect", "LYO-BELLECOUR", "0.55", "in_stock", False),
            ("in_store", "LYO-BELLECOUR", "0.55", "in_stock", False),
        ]
        assert offers(client, "3760032131017", **lyon) == []  # OUT_OF_STOCK


async def test_french_excel_csv_gives_the_offers_shoppers_see(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, settings: Settings
) -> None:
    assert (await ingest(db, redis, keys, "retailers", "retailers.csv")).exit_code == 0
    stores = await ingest(db, redis, keys, "stores", "excel_fr_stores.csv", BRICOBELLE)
    assert (stores.rows_loaded, stores.rejects) == (5, [])
    names = dict(await db.fetch("SELECT store_id, address FROM stores"))
    assert names["BB-LILLE"] == "3 rue de Béthune"  # Windows-1252 read as such
    assert names["BB-VILLENEUVE"] == "Centre commercial V2; porte 4"  # a quoted ; is text
    report = await ingest(db, redis, keys, "offers", "excel_fr_offers.csv", BRICOBELLE)
    assert rejected(report) == [
        (8, "gtin", "\"3,76003E+12\" is in Excel's scientific notation: format the column as text"),
        (9, "retailer_id", 'names retailer "epicerie-lumiere", but this feed is "bricobelle"\'s (--retailer)'),
        (11, "price", '"2.1O" is not a decimal like 2.99'),
        (12, "updated_at", '"02/12/2026 18:00" is not an ISO 8601 date-time'),
    ]
    assert await db.fetchval("SELECT count(*) FROM offers WHERE retailer_id <> 'bricobelle'") == 0
    await build_index(db, redis, keys, grace_s=0)
    with TestClient(create_app(settings)) as client:
        lille = {"lat": 50.6330, "lon": 3.0610, "radius_km": 15, "country": "FR"}
        assert offers(client, NUTELLA, **lille) == [
            ("click_collect", "BB-LILLE", "3.49", "in_stock", False),
            ("click_collect", "BB-VILLENEUVE", "3.49", "in_stock", False),
            ("delivery", "", "3.29", "in_stock", False),
            ("in_store", "BB-LILLE", "3.49", "in_stock", False),
            ("in_store", "BB-VILLENEUVE", "3.49", "in_stock", False),
        ]
        assert ("delivery", "", "1099.00", "low_stock", False) in offers(client, "3760032131017", **lille)
        assert ("in_store", "BB-ROUBAIX", "8.40", "low_stock", True) in offers(client, "3760032131017", **lille)


async def test_the_same_feeds_again_change_nothing(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, lumiere: dict[str, IngestReport], tmp_path: Path
) -> None:
    first = await ingest(db, redis, keys, "offers", "google_inventory.tsv", LUMIERE)
    before = [tuple(r) for r in await db.fetch("SELECT * FROM offers ORDER BY 1, 2, 3")]
    again = {
        "stores": await ingest(db, redis, keys, "stores", "gbp_stores.csv", LUMIERE),
        "products": await ingest(db, redis, keys, "products", "google_products.tsv", LUMIERE),
        "offers": await ingest(db, redis, keys, "offers", "google_inventory.tsv", LUMIERE),
    }
    for kind, report in again.items():
        assert (kind, report.rows_loaded, report.index_changes) == (kind, 0, 0)
    assert again["offers"].rows_unchanged == first.rows_loaded
    assert [tuple(r) for r in await db.fetch("SELECT * FROM offers ORDER BY 1, 2, 3")] == before
    # Without FeedOptions.as_of a Google inventory's time is its file's: the same file, the same time.
    copy = tmp_path / "inventory.tsv"
    copy.write_bytes((FEEDS / "google_inventory.tsv").read_bytes())
    plain = FeedOptions(retailer="epicerie-lumiere")
    await ingest_files(db, redis, keys, "offers", [copy], options=plain)
    assert (await ingest_files(db, redis, keys, "offers", [copy], options=plain)).rows_loaded == 0


async def test_cli_refuses_an_unknown_or_missing_retailer_with_exit_2(
    settings: Settings, db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (await ingest(db, redis, keys, "retailers", "retailers.csv")).exit_code == 0
    capsys.readouterr()
    stores = [FEEDS / "gbp_stores.csv"]
    assert await run_ingest_command(settings, "stores", stores, FeedOptions(retailer="nobody")) == 2
    assert 'unknown retailer "nobody" (--retailer)' in capsys.readouterr().out
    assert await run_ingest_command(settings, "stores", stores, FeedOptions()) == 2
    assert "a gbp file names no retailer: give --retailer ID" in capsys.readouterr().out
    forced = FeedOptions(retailer="epicerie-lumiere", format="google-inventory")
    assert await run_ingest_command(settings, "offers", stores, forced) == 2
    assert "gbp_stores.csv: header lacks id or gtin" in capsys.readouterr().out
    assert await db.fetchval("SELECT count(*) FROM stores") == 0
