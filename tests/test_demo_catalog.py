"""The demo catalog: deterministic files that meet the demo's promises and load through the real ingest."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

from cache.demo_catalog import DemoCatalog, write_demo_catalog
from cache.keys import Keys
from geo.distance import great_circle_km
from geo.towns import Town, french_towns
from geo.zones import geojson_error


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> DemoCatalog:
    return write_demo_catalog(tmp_path_factory.mktemp("demo"))


def _rows(path: Path) -> list[dict[str, str]]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return list(csv.DictReader(io.StringIO(data.decode())))


def _retailers(catalog: DemoCatalog) -> list[dict[str, object]]:
    return [json.loads(line) for line in catalog.retailers.read_text().splitlines()]


def _gtin_is_valid(code: str) -> bool:
    digits = [int(d) for d in code]
    weighted = sum(d * (3 if i % 2 else 1) for i, d in enumerate(reversed(digits[:-1]), start=1))
    return len(code) in (8, 12, 13, 14) and (weighted + digits[-1]) % 10 == 0


def test_same_seed_gives_the_same_bytes(catalog: DemoCatalog, tmp_path: Path) -> None:
    again = write_demo_catalog(tmp_path / "again")
    for name in ("retailers", "stores", "offers", "campaign"):
        assert getattr(again, name).read_bytes() == getattr(catalog, name).read_bytes(), name
    assert again.gtins == catalog.gtins


def test_another_seed_gives_another_catalog(catalog: DemoCatalog, tmp_path: Path) -> None:
    other = write_demo_catalog(tmp_path / "other", seed=7)
    assert other.stores.read_bytes() != catalog.stores.read_bytes()


def test_retailers_have_distinct_https_basket_url_styles(catalog: DemoCatalog) -> None:
    retailers = _retailers(catalog)
    assert len(retailers) >= 8
    templates = [urlsplit(str(r["cart_url_template"])) for r in retailers]
    assert all(t.scheme == "https" and str(t.hostname).endswith(".example") for t in templates)
    # Different shapes, not just different hosts: the path and the query parameter names differ.
    shapes = {(t.path, tuple(sorted(parse_qs(t.query)))) for t in templates}
    assert len(shapes) == len(templates)
    assert any("{gtin}" in t.path for t in templates) and any("{gtin}" in t.query for t in templates)
    assert all("{gtin}" in t.geturl() and "{qty}" in t.geturl() and not t.fragment for t in templates)
    assert sum("{store_id}" in t.geturl() for t in templates) >= 6
    assert len({r["delivery_countries"] for r in retailers}) >= 4


def test_one_retailer_delivers_only_inside_a_usable_zone(catalog: DemoCatalog) -> None:
    zoned = [r for r in _retailers(catalog) if "delivery_zones" in r]
    assert len(zoned) == 1
    assert geojson_error(zoned[0]["delivery_zones"]) is None


def test_at_least_2000_stores_each_within_3_km_of_a_real_town(catalog: DemoCatalog) -> None:
    stores = _rows(catalog.stores)
    assert len(stores) >= 2000
    towns: dict[str, list[Town]] = {}
    for town in french_towns(5000):
        towns.setdefault(town.name, []).append(town)
    for store in stores:
        lat, lon = float(store["lat"]), float(store["lon"])
        # Town names repeat (La Madeleine near Lille and in Nice): the store's is the one it is near.
        town = min(towns[store["city"]], key=lambda t: great_circle_km(lat, lon, t.lat, t.lon))
        assert great_circle_km(lat, lon, town.lat, town.lon) <= 3.0
        assert store["country"] == "FR" and store["postal_code"] == (town.postal_code or "")
    assert len({(s["retailer_id"], s["store_id"]) for s in stores}) == len(stores)
    assert len({s["city"] for s in stores}) > 300


def test_products_have_valid_gtins_and_include_the_spec_example(catalog: DemoCatalog) -> None:
    assert len(catalog.gtins) >= 100
    assert len(set(catalog.gtins)) == len(catalog.gtins)
    assert all(_gtin_is_valid(g) for g in catalog.gtins)
    assert "3017620422003" in catalog.gtins
    campaign = json.loads(catalog.campaign.read_text())
    labels = {p["gtin"]: p["label"] for p in campaign["products"]}
    assert labels["3017620422003"] == "Nutella 400 g"


def test_offers_mix_stock_levels_modes_and_online_delivery(catalog: DemoCatalog) -> None:
    offers = _rows(catalog.offers)
    assert 20_000 <= len(offers) <= 150_000
    assert {o["gtin"] for o in offers} == set(catalog.gtins)
    quantities = Counter("out" if o["quantity"] == "0" else "low" if int(o["quantity"]) <= 3 else "ok" for o in offers)
    assert 0.01 < quantities["out"] / len(offers) < 0.1
    assert 0.02 < quantities["low"] / len(offers) < 0.2
    online = [o for o in offers if o["store_id"] == ""]
    assert online and all(o["modes"] == "delivery" for o in online)
    assert len({o["retailer_id"] for o in online}) >= 3
    assert {o["modes"] for o in offers} >= {"in_store", "click_collect", "in_store|click_collect", "delivery"}
    assert all(o["updated_at"].endswith("+01:00") and o["currency"] == "EUR" for o in offers)
    assert all(len(o["price"].split(".")[1]) == 2 for o in offers)
    store_keys = {(s["retailer_id"], s["store_id"]) for s in _rows(catalog.stores)}
    assert all((o["retailer_id"], o["store_id"]) in store_keys for o in offers if o["store_id"])


def test_demo_campaign_is_valid_for_the_campaign_checker(catalog: DemoCatalog) -> None:
    from edge_api.campaign_rules import load_campaign_file

    campaign, errors = load_campaign_file(catalog.campaign)
    assert errors == [] and campaign is not None
    assert campaign.id == "demo" and campaign.locale == "fr" and campaign.radius_km == 20
    retailer_ids = {r["retailer_id"] for r in _retailers(catalog)}
    assert set(campaign.retailers.include) | set(campaign.retailers.exclude) <= retailer_ids
    assert campaign.tracking == {"utm_source": "nearcart", "utm_medium": "where-to-buy", "utm_campaign": "demo"}


async def test_demo_feeds_load_through_ingest_without_a_rejected_row(
    catalog: DemoCatalog, db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys
) -> None:
    from cache.ingest import ingest_files

    for kind, path in (("retailers", catalog.retailers), ("stores", catalog.stores), ("offers", catalog.offers)):
        report = await ingest_files(db, redis, keys, kind, [path])
        assert report.fatal is None and report.rejects == [], (kind, report.rejects[:3])
    assert await db.fetchval("SELECT count(*) FROM stores") == len(_rows(catalog.stores))
    zone = await db.fetchval("SELECT delivery_zones FROM retailers WHERE delivery_zones IS NOT NULL")
    assert geojson_error(zone) is None
