"""PUT /admin/v1/retailers/{id}/feeds/{kind}: a retailer's own feed, streamed, reported row by row, never another's."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
import redis.asyncio as aioredis
from starlette.testclient import TestClient

from cache.index import build_index
from cache.keys import Keys
from edge_api.app import create_app
from edge_api.settings import Settings
from tests.cache.test_ingest import NUTELLA, OFFER_HEADER, RETAILERS, STORES, ingest, write
from tests.edge_api.test_admin import bearer

# Tokens are made when a test uses them: made at import, they expire (5 min) before a long run gets here.


def shopco() -> dict[str, str]:
    return bearer("retailer:shopco")


def bigbox() -> dict[str, str]:
    return bearer("retailer:bigbox")


def admin() -> dict[str, str]:
    return bearer("admin")


# Five rows: three good, a bad GTIN (line 3) and a price with a comma (line 5).
PARTLY_BAD = OFFER_HEADER + (
    "shopco,paris-1,3017620422003,2.99,EUR,5,in_store|click_collect,2024-05-01T10:00:00+02:00\n"
    "shopco,paris-1,3017620422004,2.99,EUR,5,in_store,2024-05-01T10:00:00+02:00\n"
    "shopco,lyon-1,3017620422003,2.89,EUR,7,in_store,2024-05-01T10:00:00+02:00\n"
    'shopco,paris-1,96385074,"1,50",EUR,3,click_collect,2024-05-01T10:00:00+02:00\n'
    "shopco,,3017620422003,3.49,EUR,100,delivery,2024-05-01T10:00:00+02:00\n"
)
NEAR_PARIS = {"gtin": NUTELLA, "lat": "48.85", "lon": "2.35"}


@pytest.fixture
async def catalog(db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path) -> None:
    await db.execute("TRUNCATE feed_uploads")
    for kind, text in (("retailers", RETAILERS), ("stores", STORES)):
        assert (await ingest(db, redis, keys, kind, write(tmp_path, f"{kind}.csv", text))).exit_code == 0
    await build_index(db, redis, keys, grace_s=0)


def app_client(settings: Settings, **changes: Any) -> TestClient:
    return TestClient(create_app(msgspec.structs.replace(settings, **changes)), base_url="http://127.0.0.1")


@pytest.fixture
def client(settings: Settings, catalog: None) -> Iterator[TestClient]:
    with app_client(settings) as client:
        yield client


def offered(client: TestClient) -> list[tuple[str, str, str | None]]:
    """(retailer, mode, store) of every Nutella offer near Paris, as a shopper's widget gets them."""
    answer = client.get("/v1/offers", params=NEAR_PARIS)
    assert answer.status_code == 200, answer.text
    return sorted((o["retailer"]["id"], o["mode"], (o["store"] or {}).get("id")) for o in answer.json()["offers"])


def test_a_partly_bad_feed_loads_its_good_rows_and_names_each_bad_one(
    client: TestClient, db: asyncpg.Connection
) -> None:
    answer = client.put("/admin/v1/retailers/shopco/feeds/offers", content=PARTLY_BAD.encode(), headers=shopco())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "rejected rows" and body["exit_code"] == 3
    report = body["report"]
    assert (report["rows_read"], report["rows_loaded"], report["rows_rejected"]) == (5, 3, 2)
    assert [(r["line"], r["field"]) for r in report["rejects"]] == [(3, "gtin"), (5, "price")]
    assert "check digit" in report["rejects"][0]["reason"]
    assert offered(client) == [("shopco", "click_collect", "paris-1"), ("shopco", "delivery", None),
                               ("shopco", "in_store", "paris-1")]
    # The same answer to poll, and the run in the retailer's history.
    assert client.get(body["poll"], headers=shopco()).json() == body
    listed = client.get("/admin/v1/retailers/shopco/uploads", headers=shopco()).json()
    assert [u["upload_id"] for u in listed["uploads"]] == [body["upload_id"]]


async def test_the_same_feed_again_changes_nothing(client: TestClient, db: asyncpg.Connection) -> None:
    first = client.put("/admin/v1/retailers/shopco/feeds/offers", content=PARTLY_BAD.encode(), headers=shopco())
    before = [tuple(r) for r in await db.fetch("SELECT * FROM offers ORDER BY 1, 2, 3")]
    again = client.put("/admin/v1/retailers/shopco/feeds/offers", content=PARTLY_BAD.encode(), headers=shopco())
    assert first.json()["report"]["rows_loaded"] == 3
    assert again.json()["report"]["rows_loaded"] == 0 and again.json()["report"]["rows_unchanged"] == 3
    assert [tuple(r) for r in await db.fetch("SELECT * FROM offers ORDER BY 1, 2, 3")] == before


async def test_a_retailer_never_writes_another_retailers_feed(client: TestClient, db: asyncpg.Connection) -> None:
    feed = (OFFER_HEADER + "bigbox,paris-9,3017620422003,0.01,EUR,999,in_store,2024-05-01T10:00:00+02:00\n").encode()
    # By token: B's URL with A's token is the 404 of a retailer that does not exist.
    for url in ("/admin/v1/retailers/bigbox/feeds/offers", "/admin/v1/retailers/nosuch/feeds/offers"):
        refused = client.put(url, content=feed, headers=shopco())
        assert refused.status_code == 404, url
        assert refused.json()["error"]["parameter"] == "retailer_id"
    assert client.put("/admin/v1/retailers/bigbox/feeds/offers", content=feed).status_code == 401
    assert client.get("/admin/v1/retailers/bigbox/uploads", headers=shopco()).status_code == 404
    # By a row naming B in A's own feed: rejected with that reason, the good row beside it loaded.
    own = feed + b"shopco,paris-1,3017620422003,2.99,EUR,5,in_store,2024-05-01T10:00:00+02:00\n"
    answer = client.put("/admin/v1/retailers/shopco/feeds/offers", content=own, headers=shopco())
    assert answer.status_code == 200, answer.text
    report = answer.json()["report"]
    assert report["rows_loaded"] == 1
    (reject,) = report["rejects"]
    assert (reject["line"], reject["field"]) == (2, "retailer_id")
    assert '"bigbox"' in reject["reason"] and '"shopco"' in reject["reason"]
    assert await db.fetchval("SELECT count(*) FROM offers WHERE retailer_id = 'bigbox'") == 0
    assert await db.fetchval("SELECT count(*) FROM feed_uploads WHERE retailer_id = 'bigbox'") == 0
    # An admin may send any retailer's feed.
    assert client.put("/admin/v1/retailers/bigbox/feeds/offers", content=feed, headers=admin()).status_code == 200
    assert ("bigbox", "in_store", "paris-9") in offered(client)


async def test_a_stores_feed_naming_another_retailer_is_refused_row_by_row(
    client: TestClient, db: asyncpg.Connection
) -> None:
    stores = STORES.replace("Big Box Bercy", "Taken over").encode()
    answer = client.put("/admin/v1/retailers/shopco/feeds/stores", content=stores, headers=shopco())
    report = answer.json()["report"]
    assert [(r["line"], r["field"]) for r in report["rejects"]] == [(4, "retailer_id")]
    assert await db.fetchval("SELECT name FROM stores WHERE store_id = 'paris-9'") == "Big Box Bercy"


def test_gzip_is_read_by_header_or_by_its_bytes(client: TestClient) -> None:
    packed = gzip.compress(PARTLY_BAD.encode())
    by_header = client.put("/admin/v1/retailers/shopco/feeds/offers", content=packed,
                           headers={**shopco(), "Content-Encoding": "gzip"})
    assert by_header.status_code == 200 and by_header.json()["report"]["rows_loaded"] == 3
    theirs = PARTLY_BAD.replace("shopco,", "bigbox,").replace("paris-1", "paris-9").replace("lyon-1", "paris-9")
    by_bytes = client.put("/admin/v1/retailers/bigbox/feeds/offers", content=gzip.compress(theirs.encode()),
                          headers=bigbox())
    assert by_bytes.status_code == 200 and by_bytes.json()["report"]["rows_read"] == 5
    lying = client.put("/admin/v1/retailers/shopco/feeds/offers", content=PARTLY_BAD.encode(),
                       headers={**shopco(), "Content-Encoding": "gzip"})
    assert lying.status_code == 400 and lying.json()["error"]["parameter"] == "Content-Encoding"
    other = client.put("/admin/v1/retailers/shopco/feeds/offers", content=b"x", headers={**shopco(),
                       "Content-Encoding": "br"})
    assert other.status_code == 415


async def test_an_upload_over_the_cap_is_refused_whole(settings: Settings, catalog: None,
                                                       db: asyncpg.Connection) -> None:
    big = PARTLY_BAD.encode() * 20
    with app_client(settings, feed_upload_max_bytes=len(big) - 1) as client:
        declared = client.put("/admin/v1/retailers/shopco/feeds/offers", content=big, headers=shopco())
        assert declared.status_code == 413 and declared.json()["error"]["parameter"] == "body"
        # Without a Content-Length (chunked), the cap stops the stream itself.
        streamed = client.put("/admin/v1/retailers/shopco/feeds/offers", content=iter([big[:1000], big[1000:]]),
                              headers=shopco())
        assert streamed.status_code == 413
        fits = client.put("/admin/v1/retailers/shopco/feeds/offers", content=PARTLY_BAD.encode(), headers=shopco())
        assert fits.status_code == 200
    assert await db.fetchval("SELECT count(*) FROM feed_uploads") == 1


def test_an_unusable_file_or_kind_is_named(client: TestClient) -> None:
    wrong = client.put("/admin/v1/retailers/shopco/feeds/offers", content=b"gtin,price\n1,2\n", headers=shopco())
    assert wrong.status_code == 422 and wrong.json()["exit_code"] == 2
    assert "header lacks" in wrong.json()["report"]["fatal"]
    # The report names the upload, not where the server kept it.
    assert "/tmp" not in wrong.text and "nearcart-upload" not in wrong.text
    kind = client.put("/admin/v1/retailers/shopco/feeds/retailers", content=RETAILERS.encode(), headers=shopco())
    assert kind.status_code == 400 and kind.json()["error"]["parameter"] == "kind"


def test_a_large_upload_loads_in_the_background_and_is_polled(settings: Settings, catalog: None) -> None:
    with app_client(settings, feed_upload_background_bytes=100) as client:
        answer = client.put("/admin/v1/retailers/shopco/feeds/offers", content=PARTLY_BAD.encode(), headers=shopco())
        assert answer.status_code == 202, answer.text
        assert answer.json()["status"] == "running" and answer.json()["report"] is None
        poll = answer.headers["location"]
        assert poll == answer.json()["poll"]
        deadline = time.monotonic() + 60
        while (body := client.get(poll, headers=shopco()).json())["status"] == "running":
            assert time.monotonic() < deadline, "the background load never finished"
            time.sleep(0.1)
        assert body["status"] == "rejected rows" and body["report"]["rows_loaded"] == 3
        assert body["finished_at"] is not None
        assert ("shopco", "delivery", None) in offered(client)
