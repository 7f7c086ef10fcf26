"""Feed input at the edges (issue #14, findings 2 and 8): each bad row alone is refused, with its line and why."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from cache.feed_errors import RowError
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
