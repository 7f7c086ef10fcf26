"""Feed input at the edges (issue #14, findings 2 and 8): each bad row alone is refused, with its line and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from cache.feed_errors import RowError
from cache.feed_reader import FeedReader
from cache.formats.base import FeedOptions
from cache.gtin import check_digit
from cache.ingest import ingest_files
from cache.keys import MAX_GEO_LAT, Keys
from cache.row_rules import store_validator

STORE_HEADER = "retailer_id,store_id,name,address,postal_code,city,country,lat,lon\n"


@pytest.mark.parametrize("lat", ["85.06", "-85.06", "89.9", "-90"])
def test_store_beyond_the_geo_index_is_refused_naming_lat(lat: str) -> None:
    validate = store_validator({"shop"})
    with pytest.raises(RowError) as caught:
        validate(1, ("shop", "s1", "Shop", "", "", "", "NO", lat, "15.0"))
    assert caught.value.field == "lat"
    assert str(MAX_GEO_LAT) in caught.value.reason
    assert validate(1, ("shop", "s1", "Shop", "", "", "", "NO", "85.05", "15.0"))[8] == 85.05


async def test_ingest_loads_the_stores_the_index_can_hold_and_names_the_line_of_the_others(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path
) -> None:
    await db.execute("INSERT INTO retailers (retailer_id, name, cart_url_template) VALUES"
                     " ('shop', 'Shop', 'https://shop.example/{gtin}')")
    feed = tmp_path / "stores.csv"
    feed.write_text(STORE_HEADER + "shop,tromso,Tromsø,,9008,Tromsø,NO,69.65,18.96\n"
                    + "shop,pole,North Pole,,,,NO,89.9,179.9\n" + "shop,oslo,Oslo,,0150,Oslo,NO,59.91,10.75\n")
    report = await ingest_files(db, redis, keys, "stores", [feed])
    assert report.exit_code == 3
    assert [(r.line, r.field) for r in report.rejects] == [(3, "lat")]
    assert {r["store_id"] for r in await db.fetch("SELECT store_id FROM stores")} == {"tromso", "oslo"}


# --- finding 8: one bad line costs one row, a doubled column costs the file -------------------

OFFER_HEADER = "retailer_id,store_id,gtin,price,currency,quantity,modes,updated_at\n"


def _gtin(n: int) -> str:
    body = f"{3_000_000_000_000 + n * 10:013d}"[:12]
    return body + str(check_digit(body))


def _offer_line(n: int, modes: str = "delivery") -> str:
    return f"shop,,{_gtin(n)},{n % 90 + 1}.99,EUR,{n % 7 + 1},{modes},2024-05-01T10:00:00+02:00\n"


def _feed(tmp_path: Path, lines: list[bytes], name: str = "offers.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(OFFER_HEADER.encode() + b"".join(lines))
    return path


def _read(path: Path, **options: Any) -> list[tuple[int, tuple[Any, ...], tuple[str, str] | None]]:
    with FeedReader(path, "offers", FeedOptions(**options)) as reader:
        return list(reader)


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "with-quoted-fields"])
def test_a_windows_1252_byte_costs_its_own_line_only(tmp_path: Path, quoted: bool) -> None:
    lines = [_offer_line(n).encode() for n in range(2261)]  # file lines 2..2262, as in the issue
    if quoted:
        lines[10] = lines[10].replace(b",EUR,", b',"EUR",')
    lines[1499] = lines[1499].replace(b"delivery", b"livr\xe9")  # file line 1501
    got = _read(_feed(tmp_path, lines))
    problems = [(line, problem) for line, _, problem in got if problem is not None]
    assert [(line, field) for line, (field, _) in problems] == [(1501, "row")]
    assert "not UTF-8" in problems[0][1][1]
    good = [line for line, _, problem in got if problem is None]
    assert len(good) == 2260 and good[-1] == 2262


async def test_ingest_of_a_file_with_one_bad_byte_loads_every_other_row(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path
) -> None:
    await db.execute("INSERT INTO retailers (retailer_id, name, cart_url_template, delivery_countries) VALUES"
                     " ('shop', 'Shop', 'https://shop.example/{gtin}', '{FR}')")
    lines = [_offer_line(n).encode() for n in range(2261)]
    lines[1499] = lines[1499].replace(b"EUR", b"\x80UR")
    report = await ingest_files(db, redis, keys, "offers", [_feed(tmp_path, lines)])
    assert (report.rows_read, report.rows_rejected, report.rows_loaded) == (2261, 1, 2260)
    assert [(r.line, r.field) for r in report.rejects] == [(1501, "row")]
    assert await db.fetchval("SELECT count(*) FROM offers") == 2260


@pytest.mark.parametrize(("header", "column"), [
    ("retailer_id,store_id,gtin,price,currency,quantity,modes,updated_at,price\n", "price"),
    ("retailer_id,store_id,gtin,Price,currency,quantity,modes,updated_at, price \n", "price"),
    ("retailer_id;store_id;gtin;price;currency;quantity;modes;updated_at;gtin\n", "gtin"),
])
async def test_a_column_given_twice_refuses_the_file_naming_it(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path, header: str, column: str
) -> None:
    sep = ";" if ";" in header else ","
    row = sep.join(["shop", "", "3017620422003", "2.99", "EUR", "1", "delivery", "2024-05-01T10:00:00Z", "1.99"])
    feed = tmp_path / "offers.csv"
    feed.write_text(header + row + "\n", encoding="utf-8")
    report = await ingest_files(db, redis, keys, "offers", [feed])
    assert report.exit_code == 2
    assert f"'{column}'" in (report.fatal or "").lower() and "twice" in (report.fatal or "")
    assert await db.fetchval("SELECT count(*) FROM offers") == 0


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "with-quoted-fields"])
@pytest.mark.parametrize("length", [70_000, 3_000_000])
def test_an_overlong_line_is_a_rejected_row_and_the_file_goes_on(tmp_path: Path, quoted: bool, length: int) -> None:
    lines = [_offer_line(n).encode() for n in range(300)]
    if quoted:
        lines[3] = lines[3].replace(b",EUR,", b',"EUR",')
    lines[99] = b"shop,," + b"9" * length + b",2.99,EUR,1,delivery,2024-05-01T10:00:00Z\n"  # file line 101
    got = _read(_feed(tmp_path, lines))
    problems = [(line, problem) for line, _, problem in got if problem is not None]
    assert problems == [(101, ("row", "line longer than 65,536 characters"))]
    assert [line for line, _, problem in got if problem is None] == [n for n in range(2, 302) if n != 101]


def test_an_overlong_last_line_without_an_end_is_rejected(tmp_path: Path) -> None:
    lines = [_offer_line(n).encode() for n in range(3)] + [b"shop,," + b"9" * 200_000]
    got = _read(_feed(tmp_path, lines), max_line=1000)
    problems = [(line, problem) for line, _, problem in got if problem]
    assert problems == [(5, ("row", "line longer than 1,000 characters"))]
