"""Feed uploads from the back office: the form, the report page with the rejected rows, its CSV, the runs' history."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from typing import Any

import asyncpg
import msgspec
import pytest
import redis.asyncio as aioredis
from office_site import ACME, ADMIN, SHOP, csrf_of, logged_in
from starlette.testclient import TestClient

from backoffice.feed_pages import FORM_SLACK
from cache.index import build_index, index_writer_lock
from cache.keys import Keys
from edge_api.app import create_app
from edge_api.settings import Settings

HEADER = "retailer_id,store_id,gtin,price,currency,quantity,modes,updated_at\n"
# Line 3: a bad GTIN; line 4: a store of another retailer's id; line 5: a row naming another retailer.
FEED = HEADER + (
    "shop,s1,3017620422003,2.99,EUR,5,in_store,2024-05-01T10:00:00+02:00\n"
    "shop,s1,3017620422004,2.99,EUR,5,in_store,2024-05-01T10:00:00+02:00\n"
    "shop,m1,3017620422003,2.99,EUR,5,in_store,2024-05-01T10:00:00+02:00\n"
    "mart,m1,3017620422003,0.01,EUR,5,in_store,2024-05-01T10:00:00+02:00\n"
    ",,3017620422003,3.49,EUR,9,delivery,2024-05-01T10:00:00+02:00\n"
)
_REPORT = re.compile(r"^/admin/retailers/shop/feeds/(\d+)$")


@pytest.fixture
async def shops(db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, people: None) -> None:
    await db.execute("TRUNCATE feed_uploads")
    await db.execute("INSERT INTO retailers (retailer_id, name, cart_url_template, delivery_countries) VALUES"
                     " ('shop', 'Shop', 'https://shop.example/{gtin}', '{FR}'),"
                     " ('mart', 'Mart', 'https://mart.example/{gtin}', '{FR}')")
    await db.execute("INSERT INTO stores (retailer_id, store_id, name, country, lat, lon) VALUES"
                     " ('shop', 's1', 'Shop Opéra', 'FR', 48.87, 2.33),"
                     " ('mart', 'm1', 'Mart Bercy', 'FR', 48.84, 2.38)")
    await build_index(db, redis, keys, grace_s=0)


def send(client: TestClient, csrf: str, retailer_id: str = "shop", kind: str = "offers", body: str = FEED,
         name: str = "stock.csv") -> Any:
    return client.post(f"/admin/retailers/{retailer_id}/feeds", data={"csrf": csrf, "kind": kind},
                       files={"file": (name, body.encode(), "text/csv")}, follow_redirects=False)


async def test_a_retailer_uploads_a_partly_bad_feed_and_reads_its_report(
    client: TestClient, shops: None, db: asyncpg.Connection
) -> None:
    logged_in(client, SHOP)
    form = client.get("/admin/retailers/shop/feeds")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
    answer = send(client, csrf_of(form.text), name="=stock.csv")
    assert answer.status_code == 303
    location = answer.headers["location"]
    match = _REPORT.match(location)
    assert match is not None
    report = client.get(location).text
    assert '<td id="rows-rejected">3</td>' in report
    rows = re.findall(r"<tr><td>(\d+)</td><td><code>([^<]+)</code></td><td>([^<]+)</td></tr>", report)
    assert [(line, field) for line, field, _ in rows] == [("3", "gtin"), ("4", "store_id"), ("5", "retailer_id")]
    assert "&#34;mart&#34;" in rows[2][2] and "&#34;shop&#34;" in rows[2][2]
    table = client.get(location + "/report.csv")
    assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
    assert "attachment" in table.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(table.text.removeprefix("\ufeff"))))
    assert lines[0] == ["file", "line", "field", "reason"]
    # The file's name, which starts like a formula, cannot run as one in a spreadsheet.
    assert [(f, line, field) for f, line, field, _ in lines[1:]] == [
        ("'=stock.csv", "3", "gtin"), ("'=stock.csv", "4", "store_id"), ("'=stock.csv", "5", "retailer_id")]
    # The good rows are loaded, the empty retailer_id is the uploader's, and mart's store is untouched.
    offers = await db.fetch("SELECT retailer_id, store_id FROM offers ORDER BY 1, 2")
    assert [tuple(o) for o in offers] == [("shop", ""), ("shop", "s1")]
    history = client.get("/admin/retailers/shop/feeds").text
    assert f'href="{location}"' in history and "<td>5</td>" in history and "<td>2</td>" in history


async def test_another_retailers_feeds_are_not_there(client: TestClient, shops: None, db: asyncpg.Connection) -> None:
    csrf = logged_in(client, SHOP)
    assert client.get("/admin/retailers/mart/feeds").status_code == 404
    assert send(client, csrf, retailer_id="mart").status_code == 404
    mine = send(client, csrf)
    mart_upload = await db.fetchval("SELECT max(id) FROM feed_uploads") + 1
    client.cookies.clear()
    logged_in(client, ADMIN)
    assert send(client, csrf_of(client.get("/admin/").text), retailer_id="mart",
                body=FEED.replace("shop,", "mart,")).status_code == 303
    client.cookies.clear()
    logged_in(client, SHOP)
    assert client.get(f"/admin/retailers/mart/feeds/{mart_upload}").status_code == 404
    assert client.get(f"/admin/retailers/shop/feeds/{mart_upload}").status_code == 404
    assert client.get(mine.headers["location"]).status_code == 200
    client.cookies.clear()
    logged_in(client, ACME)
    assert client.get("/admin/retailers/shop/feeds").status_code == 404


async def test_an_upload_without_its_csrf_token_or_too_large_changes_nothing(
    settings: Settings, shops: None, db: asyncpg.Connection
) -> None:
    small = msgspec.structs.replace(settings, feed_upload_max_bytes=len(FEED))
    with TestClient(create_app(small), base_url="http://127.0.0.1") as client:
        csrf = logged_in(client, SHOP)
        assert send(client, "stale").status_code == 403
        # One byte over in the file; then a body far over, refused while it streams in.
        assert send(client, csrf, body=FEED + "\n").status_code == 413
        huge = FEED + "x" * (FORM_SLACK * 2)
        assert send(client, csrf, body=huge).status_code == 413
        assert await db.fetchval("SELECT count(*) FROM feed_uploads") == 0
        assert await db.fetchval("SELECT count(*) FROM offers") == 0
        assert send(client, csrf).status_code == 303


async def test_a_session_may_use_the_api_with_its_csrf_header(
    client: TestClient, shops: None, db: asyncpg.Connection
) -> None:
    csrf = logged_in(client, SHOP)
    url = "/admin/v1/retailers/shop/feeds/offers"
    assert client.put(url, content=FEED.encode()).status_code == 403
    answer = client.put(url, content=FEED.encode(), headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200 and answer.json()["report"]["rows_loaded"] == 2
    assert answer.json()["report"]["files"] == ["offers feed"]
    assert client.put("/admin/v1/retailers/mart/feeds/offers", content=FEED.encode(),
                      headers={"X-CSRF-Token": csrf}).status_code == 404
    assert await db.fetchval("SELECT uploaded_by FROM feed_uploads") == SHOP


async def test_a_large_upload_finishes_in_the_background_while_its_page_refreshes(
    settings: Settings, shops: None, db: asyncpg.Connection
) -> None:
    quick = msgspec.structs.replace(settings, feed_upload_background_bytes=100)
    with TestClient(create_app(quick), base_url="http://127.0.0.1") as client:
        csrf = logged_in(client, SHOP)
        # While the index writer's lock is held here, the offers load waits: the upload is seen running.
        async with index_writer_lock(db):
            answer = send(client, csrf)
            assert answer.status_code == 303
            running = client.get(answer.headers["location"]).text
            assert '<meta http-equiv="refresh" content="2">' in running
            assert '<dd id="upload-status">running</dd>' in running
            assert "is loading" in client.get("/admin/retailers/shop/feeds").text
        deadline = time.monotonic() + 60
        while "refresh" in (page := client.get(answer.headers["location"]).text):
            assert time.monotonic() < deadline, "the background load never finished"
            await asyncio.sleep(0.1)
        assert '<td id="rows-rejected">3</td>' in page
        assert await db.fetchval("SELECT count(*) FROM offers WHERE retailer_id = 'shop'") == 2


async def test_a_load_its_worker_never_finished_is_shown_interrupted(
    client: TestClient, shops: None, db: asyncpg.Connection
) -> None:
    logged_in(client, SHOP)
    upload_id = await db.fetchval(
        "INSERT INTO feed_uploads (retailer_id, kind, uploaded_by, bytes, received_at)"
        " VALUES ('shop', 'offers', $1, 10, now() - interval '7 hours') RETURNING id", SHOP)
    page = client.get(f"/admin/retailers/shop/feeds/{upload_id}").text
    assert "refresh" not in page and "Send the file again" in page
    assert '<dd id="upload-status">interrupted</dd>' in page
