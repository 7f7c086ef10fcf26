from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from cache import ingest as ingest_module
from cache.gtin import check_digit
from cache.index import build_index
from cache.ingest import ingest_files
from cache.ingest_report import IngestReport
from cache.keys import Keys
from cache.loaders import offers as offer_loader
from edge_api.commands.ingest import run_ingest_command
from edge_api.settings import Settings
from tests.index_query import Found, index_reader, offers_near

RETAILERS = (
    "retailer_id,name,logo_url,cart_url_template,delivery_countries\n"
    "shopco,Shop Co,https://shop.example/logo.png,https://shop.example/cart?add={gtin}&q={qty},FR|BE\n"
    "bigbox,Big Box,,https://bigbox.example/b/{store_id}/{gtin},FR\n"
)
STORES = (
    "retailer_id,store_id,name,address,postal_code,city,country,lat,lon\n"
    "shopco,paris-1,Shop Co Rivoli,1 rue de Rivoli,75001,Paris,FR,48.8566,2.3522\n"
    "shopco,lyon-1,Shop Co Lyon,2 place Bellecour,69002,Lyon,FR,45.7578,4.8320\n"
    "bigbox,paris-9,Big Box Bercy,9 quai de Bercy,75012,Paris,FR,48.8330,2.3860\n"
)
OFFER_HEADER = "retailer_id,store_id,gtin,price,currency,quantity,modes,updated_at\n"
NUTELLA = "03017620422003"
OFFERS = OFFER_HEADER + (
    "shopco,paris-1,3017620422003,2.99,EUR,5,in_store|click_collect,2024-05-01T10:00:00+02:00\n"
    "shopco,lyon-1,3017620422003,2.89,EUR,0,in_store,2024-05-01T10:00:00+02:00\n"
    "bigbox,paris-9,3017620422003,3.10,EUR,40,in_store,2024-05-01T10:00:00+02:00\n"
    "shopco,,3017620422003,3.49,EUR,100,delivery,2024-05-01T10:00:00+02:00\n"
    "bigbox,paris-9,96385074,1.00,EUR,3,click_collect,2024-05-01T10:00:00+02:00\n"
)
CATALOG = ("retailers", "stores", "products", "offers")


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


async def ingest(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, kind: str, *files: Path
) -> IngestReport:
    return await ingest_files(db, redis, keys, kind, list(files))


async def load_catalog(db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path) -> None:
    for kind, text in (("retailers", RETAILERS), ("stores", STORES), ("offers", OFFERS)):
        report = await ingest(db, redis, keys, kind, write(tmp_path, f"{kind}.csv", text))
        assert report.exit_code == 0, report.rejects


async def near_paris(redis: aioredis.Redis, keys: Keys, gtin: str = NUTELLA) -> Found:
    async with index_reader(redis, keys) as reader:
        return await offers_near(reader, gtin, 48.85, 2.35, 20, count=50)


def store_offers(answer: Found) -> list[tuple[str, int, int]]:
    return [(hit.offer.store.store_id, hit.offer.price_cents, hit.offer.quantity) for hit in answer.stores]


async def table_contents(db: asyncpg.Connection) -> dict[str, list[Any]]:
    return {
        table: [tuple(row) for row in await db.fetch(f"SELECT * FROM {table} ORDER BY 1, 2")] for table in CATALOG
    }


async def redis_contents(redis: aioredis.Redis, keys: Keys) -> dict[bytes, Any]:
    found: dict[bytes, Any] = {}
    async for key in redis.scan_iter(match=keys.prefix + "*"):
        kind = await redis.type(key)
        if kind == b"zset":
            found[key] = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == b"hash":
            found[key] = await redis.hgetall(key)
        else:
            found[key] = await redis.get(key)
    return found


async def test_feed_with_bad_rows_exits_3_names_each_bad_line_and_loads_every_good_row(
    settings: Settings, db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for kind, text in (("retailers", RETAILERS), ("stores", STORES)):
        assert await run_ingest_command(settings, kind, [write(tmp_path, f"{kind}.csv", text)]) == 0
    feed = write(
        tmp_path, "offers.csv",
        OFFER_HEADER
        + "shopco,paris-1,3017620422003,2.99,EUR,5,in_store,2024-05-01T10:00:00+02:00\n"
        + "shopco,paris-1,96385074,\"2,99\",EUR,5,in_store,2024-05-01T10:00:00+02:00\n"
        + "shopco,paris-1,3017620422004,2.99,EUR,5,in_store,2024-05-01T10:00:00+02:00\n"
        + "shopco,,96385074,4.00,EUR,1,delivery,2024-05-01T10:00:00+02:00\n"
        + "ghost,,96385074,4.00,EUR,1,delivery,2024-05-01T10:00:00+02:00\n",
    )
    capsys.readouterr()
    assert await run_ingest_command(settings, "offers", [feed]) == 3
    printed = capsys.readouterr().out.splitlines()
    assert printed[:3] == [
        f'{feed}:3: price: "2,99" is not a decimal like 2.99',
        f'{feed}:4: gtin: "3017620422004" is not a GTIN: check digit should be 3',
        f'{feed}:6: retailer_id: unknown retailer "ghost"',
    ]
    assert "5 rows read, 2 loaded, 0 unchanged, 3 rejected" in printed[3]
    stored = await db.fetch("SELECT store_id, gtin, price FROM offers ORDER BY store_id")
    assert [(r["store_id"], r["gtin"], str(r["price"])) for r in stored] == [
        ("", "00000096385074", "4.00"), ("paris-1", NUTELLA, "2.99"),
    ]
    run = await db.fetchrow("SELECT * FROM feed_runs WHERE kind = 'offers'")
    assert (run["rows_read"], run["rows_loaded"], run["rows_rejected"], run["status"]) == (5, 2, 3, "rejected rows")


async def test_missing_file_exits_2_and_loads_nothing(
    settings: Settings, db: asyncpg.Connection, redis: aioredis.Redis, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = write(tmp_path, "retailers.csv", RETAILERS)
    assert await run_ingest_command(settings, "retailers", [good, tmp_path / "missing.csv"]) == 2
    assert "missing.csv: cannot open" in capsys.readouterr().out
    assert await db.fetchval("SELECT count(*) FROM retailers") == 0


async def test_wrong_header_exits_2_and_loads_nothing_even_from_good_files(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path
) -> None:
    good = write(tmp_path, "retailers.csv", RETAILERS)
    bad = write(tmp_path, "more.csv", "retailer_id,name,logo_url\nx,X,\n")
    report = await ingest(db, redis, keys, "retailers", good, bad)
    assert report.exit_code == 2
    assert report.fatal is not None and "header lacks cart_url_template" in report.fatal
    assert await db.fetchval("SELECT count(*) FROM retailers") == 0
    assert await db.fetchval("SELECT status FROM feed_runs") == "failed"


async def test_loading_the_same_feeds_twice_changes_nothing(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path
) -> None:
    await load_catalog(db, redis, keys, tmp_path)
    await build_index(db, redis, keys, grace_s=0)
    before_tables, before_redis = await table_contents(db), await redis_contents(redis, keys)
    for kind in ("retailers", "stores", "offers"):
        report = await ingest(db, redis, keys, kind, tmp_path / f"{kind}.csv")
        assert (report.exit_code, report.rows_loaded, report.index_changes) == (0, 0, 0)
    assert await table_contents(db) == before_tables
    assert await redis_contents(redis, keys) == before_redis
    # New stores still get the next identity number: re-loads did not burn any.
    assert await db.fetchval("SELECT max(num) FROM stores") == 3


async def test_in_stock_offers_are_in_the_index_right_after_their_ingest(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path
) -> None:
    for kind, text in (("retailers", RETAILERS), ("stores", STORES)):
        await ingest(db, redis, keys, kind, write(tmp_path, f"{kind}.csv", text))
    await build_index(db, redis, keys, grace_s=0)
    assert store_offers(await near_paris(redis, keys)) == []
    report = await ingest(db, redis, keys, "offers", write(tmp_path, "offers.jsonl.gz", _as_jsonl(OFFERS)))
    assert report.exit_code == 0 and report.rows_loaded == 5
    answer = await near_paris(redis, keys)
    assert store_offers(answer) == [("paris-1", 299, 5), ("paris-9", 310, 40)]
    assert [(hit.retailer.retailer_id, hit.price_cents) for hit in answer.delivery] == [("shopco", 349)]


async def test_out_of_stock_update_removes_the_offer_and_a_restock_brings_it_back(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path
) -> None:
    await load_catalog(db, redis, keys, tmp_path)
    await build_index(db, redis, keys, grace_s=0)
    sold_out = OFFER_HEADER + "shopco,paris-1,3017620422003,2.99,EUR,0,in_store,2024-05-02T10:00:00+02:00\n"
    await ingest(db, redis, keys, "offers", write(tmp_path, "sold_out.csv", sold_out))
    assert store_offers(await near_paris(redis, keys)) == [("paris-9", 310, 40)]
    restock = OFFER_HEADER + "shopco,paris-1,3017620422003,2.79,EUR,8,in_store,2024-05-03T10:00:00+02:00\n"
    await ingest(db, redis, keys, "offers", write(tmp_path, "restock.csv", restock))
    assert store_offers(await near_paris(redis, keys)) == [("paris-1", 279, 8), ("paris-9", 310, 40)]


async def test_older_offer_row_never_overwrites_a_newer_one(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path
) -> None:
    await load_catalog(db, redis, keys, tmp_path)
    await build_index(db, redis, keys, grace_s=0)
    stale = OFFER_HEADER + "shopco,paris-1,3017620422003,1.99,EUR,0,in_store,2024-04-30T23:59:59Z\n"
    report = await ingest(db, redis, keys, "offers", write(tmp_path, "stale.csv", stale))
    assert (report.exit_code, report.rows_loaded, report.rows_unchanged) == (0, 0, 1)
    assert str(await db.fetchval("SELECT price FROM offers WHERE store_id = 'paris-1'")) == "2.99"
    assert ("paris-1", 299, 5) in store_offers(await near_paris(redis, keys))


async def test_newest_row_of_a_feed_wins_whatever_its_position(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path
) -> None:
    await load_catalog(db, redis, keys, tmp_path)
    feed = OFFER_HEADER + (
        "shopco,paris-1,3017620422003,1.50,EUR,1,in_store,2024-06-02T00:00:00Z\n"
        "shopco,paris-1,3017620422003,1.10,EUR,1,in_store,2024-06-01T00:00:00Z\n"
    )
    await ingest(db, redis, keys, "offers", write(tmp_path, "twice.csv", feed))
    assert str(await db.fetchval("SELECT price FROM offers WHERE store_id = 'paris-1'")) == "1.50"


async def test_offer_repeated_within_a_batch_is_written_once_from_its_newest_row(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_module, "BATCH_ROWS", 4)
    for kind, text in (("retailers", RETAILERS), ("stores", STORES)):
        await ingest(db, redis, keys, kind, write(tmp_path, f"{kind}.csv", text))
    await build_index(db, redis, keys, grace_s=0)
    feed = OFFER_HEADER + (
        # first batch: no key repeats
        "shopco,paris-1,3017620422003,2.00,EUR,5,in_store,2024-06-01T00:00:00Z\n"
        "bigbox,paris-9,3017620422003,3.00,EUR,5,in_store,2024-06-01T00:00:00Z\n"
        "shopco,paris-1,96385074,1.00,EUR,5,in_store,2024-06-01T00:00:00Z\n"
        "bigbox,paris-9,96385074,1.00,EUR,5,in_store,2024-06-01T00:00:00Z\n"
        # second batch: two newer rows of a stored offer, an older one, a new offer
        "shopco,paris-1,3017620422003,2.50,EUR,5,in_store,2024-06-03T00:00:00Z\n"
        "shopco,paris-1,3017620422003,2.20,EUR,5,in_store,2024-06-02T00:00:00Z\n"
        "bigbox,paris-9,3017620422003,9.99,EUR,5,in_store,2024-05-01T00:00:00Z\n"
        "shopco,lyon-1,3017620422003,4.00,EUR,2,in_store,2024-06-01T00:00:00Z\n"
        # third batch: a new offer twice, the first of two rows of the same time wins
        "bigbox,,3017620422003,5.00,EUR,1,delivery,2024-06-01T00:00:00Z\n"
        "bigbox,,3017620422003,5.50,EUR,1,delivery,2024-06-01T00:00:00Z\n"
    )
    report = await ingest(db, redis, keys, "offers", write(tmp_path, "repeats.csv", feed))
    assert (report.exit_code, report.rows_read, report.rows_loaded, report.rows_unchanged) == (0, 10, 7, 3)
    stored = await db.fetch("SELECT store_id, gtin, price FROM offers ORDER BY gtin, store_id")
    assert [(r["store_id"], r["gtin"], str(r["price"])) for r in stored] == [
        ("paris-1", "00000096385074", "1.00"), ("paris-9", "00000096385074", "1.00"),
        ("", NUTELLA, "5.00"), ("lyon-1", NUTELLA, "4.00"), ("paris-1", NUTELLA, "2.50"), ("paris-9", NUTELLA, "3.00"),
    ]
    answer = await near_paris(redis, keys)
    assert store_offers(answer) == [("paris-1", 250, 5), ("paris-9", 300, 5)]
    assert [(hit.retailer.retailer_id, hit.price_cents) for hit in answer.delivery] == [("bigbox", 500)]


async def test_moved_store_takes_its_offers_to_the_new_place(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path
) -> None:
    await load_catalog(db, redis, keys, tmp_path)
    await build_index(db, redis, keys, grace_s=0)
    moved = STORES.replace("48.8330,2.3860", "45.7640,4.8357")  # Big Box Bercy moves to Lyon
    report = await ingest(db, redis, keys, "stores", write(tmp_path, "moved.csv", moved))
    assert (report.rows_loaded, report.index_changes) == (1, 1)
    assert store_offers(await near_paris(redis, keys)) == [("paris-1", 299, 5)]


async def test_retailer_delivery_zones_come_from_json_lines(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path
) -> None:
    zone = {"type": "Polygon", "coordinates": [[[2.2, 48.8], [2.5, 48.8], [2.5, 48.9], [2.2, 48.9], [2.2, 48.8]]]}
    feed = write(tmp_path, "retailers.jsonl", _jsonl([{
        "retailer_id": "velo", "name": "Vélo Express", "cart_url_template": "https://velo.example/?g={gtin}",
        "delivery_countries": ["FR"], "delivery_zones": zone,
    }]))
    report = await ingest(db, redis, keys, "retailers", feed)
    assert report.exit_code == 0
    row = await db.fetchrow("SELECT delivery_countries, delivery_zones::text AS zones FROM retailers")
    assert row["delivery_countries"] == ["FR"] and '"Polygon"' in row["zones"]


def _jsonl(objects: list[dict[str, Any]]) -> str:
    import msgspec

    return "".join(msgspec.json.encode(obj).decode() + "\n" for obj in objects)


def _as_jsonl(csv_text: str) -> str:
    lines = csv_text.splitlines()
    header = lines[0].split(",")
    return _jsonl([dict(zip(header, line.split(","), strict=True)) for line in lines[1:]])


async def test_offer_time_is_stored_to_the_microsecond_whatever_its_offset(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path
) -> None:
    await load_catalog(db, redis, keys, tmp_path)
    feed = OFFER_HEADER + "shopco,paris-1,3017620422003,2.59,EUR,4,in_store,2024-06-01T23:59:59.123456-09:30\n"
    report = await ingest(db, redis, keys, "offers", write(tmp_path, "precise.csv", feed))
    assert (report.exit_code, report.rows_loaded) == (0, 1)
    stored = await db.fetchval("SELECT updated_at FROM offers WHERE store_id = 'paris-1' AND price = 2.59")
    assert stored == datetime(2024, 6, 2, 9, 29, 59, 123456, tzinfo=UTC)


async def test_offers_upserted_over_two_connections_keep_the_newest_row_of_every_key(
    settings: Settings, db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ingest_module, "BATCH_ROWS", 64)  # many batches, each split over both connections
    for kind, text in (("retailers", RETAILERS), ("stores", STORES)):
        await ingest(db, redis, keys, kind, write(tmp_path, f"{kind}.csv", text))
    await build_index(db, redis, keys, grace_s=0)
    gtins = [f"{body}{check_digit(body)}" for body in (f"376{i:09d}" for i in range(100))]
    rows = []
    for i, gtin in enumerate(gtins):
        older = f"shopco,paris-1,{gtin},{i + 1}.00,EUR,3,in_store,2024-06-01T08:00:00Z\n"
        newer = f"shopco,paris-1,{gtin},{i + 1}.50,EUR,{i % 3},in_store,2024-06-02T08:00:00Z\n"
        rows += [newer, older] if i % 2 else [older, newer]
    feed = write(tmp_path, "offers.csv", OFFER_HEADER + "".join(rows))

    def connect() -> Any:
        return asyncpg.connect(settings.database_url)

    report = await ingest_files(db, redis, keys, "offers", [feed], connect=connect)
    assert (report.exit_code, report.rows_read) == (0, 200)
    stored = {row["gtin"]: str(row["price"]) for row in await db.fetch("SELECT gtin, price FROM offers")}
    assert stored == {gtin.zfill(14): f"{i + 1}.50" for i, gtin in enumerate(gtins)}
    for i in (0, 1, 2, 97):
        expected = [("paris-1", (i + 1) * 100 + 50, i % 3)] if i % 3 else []
        assert store_offers(await near_paris(redis, keys, gtins[i].zfill(14))) == expected
    again = await ingest_files(db, redis, keys, "offers", [feed], connect=connect)
    assert (again.rows_loaded, again.index_changes) == (0, 0)


async def test_every_offered_gtin_is_a_product_across_batches_and_connections(
    settings: Settings, db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ingest_module, "BATCH_ROWS", 6)  # GTINs repeat across batches and lanes
    monkeypatch.setattr(offer_loader, "_KNOWN_PRODUCTS", 5)  # and the loader forgets some of them
    for kind, text in (("retailers", RETAILERS), ("stores", STORES)):
        await ingest(db, redis, keys, kind, write(tmp_path, f"{kind}.csv", text))
    gtins = [f"{body}{check_digit(body)}" for body in (f"376{i:09d}" for i in range(30))]
    rows = [
        f"{retailer},{store},{gtin},1.00,EUR,{i % 4},in_store,2024-06-01T08:00:00Z\n"
        for retailer, store in (("shopco", "paris-1"), ("bigbox", "paris-9"))
        for i, gtin in enumerate(gtins)
    ]
    feed = write(tmp_path, "offers.csv", OFFER_HEADER + "".join(rows))
    report = await ingest_files(
        db, redis, keys, "offers", [feed], connect=lambda: asyncpg.connect(settings.database_url)
    )
    assert (report.exit_code, report.rows_loaded) == (0, 60)
    products = {row[0] for row in await db.fetch("SELECT gtin FROM products")}
    assert products == {gtin.zfill(14) for gtin in gtins}


async def test_a_failing_offer_upsert_stops_the_two_connection_ingest_with_its_error(
    settings: Settings, db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ingest_module, "BATCH_ROWS", 4)
    for kind, text in (("retailers", RETAILERS), ("stores", STORES)):
        await ingest(db, redis, keys, kind, write(tmp_path, f"{kind}.csv", text))
    # The server refuses the statement, as it would on a full disk: the run must end, not wait forever.
    monkeypatch.setattr(offer_loader, "_OFFER_UPSERT", "SELECT 1 / 0")
    monkeypatch.setattr(offer_loader, "_OFFER_UPSERT_UNIQUE", "SELECT 1 / 0")
    feed = write(tmp_path, "offers.csv", OFFER_HEADER + "".join(OFFERS.splitlines(keepends=True)[1:]) * 5)

    def connect() -> Any:
        return asyncpg.connect(settings.database_url)

    with pytest.raises(asyncpg.DivisionByZeroError):
        await ingest_files(db, redis, keys, "offers", [feed], connect=connect)
    assert await db.fetchval("SELECT status FROM feed_runs WHERE kind = 'offers'") == "failed"
    assert await db.fetchval("SELECT count(*) FROM offers") == 0
