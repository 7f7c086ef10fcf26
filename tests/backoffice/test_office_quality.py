"""`/admin/quality`: admins see every retailer worst first, a retailer its own (and its choice), a brand nothing."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import pytest
from office_site import ACME, ADMIN, SHOP, csrf_of, logged_in
from starlette.testclient import TestClient


@pytest.fixture
async def figures(db: asyncpg.Connection) -> None:
    """Three retailers as a quality check left them: shop (two faults), other (one), clean (none)."""
    await db.executemany(
        "INSERT INTO retailers (retailer_id, name, cart_url_template) VALUES ($1, $2, 'https://x.example/{gtin}')",
        [("shop", "Shop"), ("other", "Other"), ("clean", "Clean")],
    )
    await db.executemany(
        "INSERT INTO retailer_quality (retailer_id, checked_at, offers, offers_unconfirmed, price_outliers, stores,"
        " stores_approximate, links_checked, links_failing, link_failures)"
        " VALUES ($1, now(), 100, $2, $3, 10, 0, 10, $4, $5::jsonb)",
        [
            ("shop", 12, 0, 3, '[{"url": "https://shop.example/cart?add=1", "reason": "HTTP 404"}]'),
            ("other", 0, 2, 0, "[]"),
            ("clean", 0, 0, 0, "[]"),
        ],
    )
    await db.execute(
        "INSERT INTO retailer_feed_health (retailer_id, kind, last_run_at, last_success_at, rejected_ratio)"
        " VALUES ('clean', 'offers', now(), now() - interval '2 hours', 0.0)"
    )


def _rows(page: str) -> list[str]:
    return re.findall(r'<tr data-retailer="([^"]+)">', page)


def test_an_admin_sees_every_retailer_worst_first(client: TestClient, figures: None) -> None:
    logged_in(client, ADMIN)
    page = client.get("/admin/quality")
    assert page.status_code == 200
    assert _rows(page.text) == ["shop", "other", "clean"]
    assert "12 / 100" in page.text and "3 / 10" in page.text and "2.0 h" in page.text
    # The others' failing links are the retailers' own business: the admin table has the counts.
    assert "HTTP 404" not in page.text
    assert 'href="/admin/quality"' in client.get("/admin/").text


def test_a_retailer_sees_only_its_own_figures_and_failing_links(client: TestClient, figures: None) -> None:
    logged_in(client, SHOP)
    page = client.get("/admin/quality").text
    assert _rows(page) == ["shop"]
    assert "https://shop.example/cart?add=1</code>: HTTP 404" in page


def test_a_brand_gets_a_404(client: TestClient, figures: None) -> None:
    logged_in(client, ACME)
    assert client.get("/admin/quality").status_code == 404
    assert 'href="/admin/quality"' not in client.get("/admin/").text


async def test_a_retailer_chooses_to_hide_its_unconfirmed_offers_and_only_its_own(
    client: TestClient, figures: None, db: asyncpg.Connection
) -> None:
    logged_in(client, SHOP)
    page = client.get("/admin/quality").text
    # Shown to shoppers, flagged as unconfirmed, until the retailer chooses otherwise.
    assert 'value="show" checked> shown as unconfirmed' in page
    assert "affichées comme non confirmées" in client.get("/admin/quality?lang=fr").text
    client.get("/admin/quality?lang=en")
    csrf = csrf_of(page.split('action="/admin/quality/shop/unconfirmed"', 1)[1])
    stale = client.post("/admin/quality/shop/unconfirmed", data={"csrf": "stale", "unconfirmed_offers": "hide"})
    assert stale.status_code == 403
    saved = client.post("/admin/quality/shop/unconfirmed", data={"csrf": csrf, "unconfirmed_offers": "hide"})
    assert saved.status_code == 200 and "Your choice is saved" in saved.text
    assert 'value="hide" checked' in saved.text
    assert await db.fetchval("SELECT unconfirmed_offers FROM retailers WHERE retailer_id = 'shop'") == "hide"
    other = client.post("/admin/quality/other/unconfirmed", data={"csrf": csrf, "unconfirmed_offers": "hide"})
    assert other.status_code == 404
    assert await db.fetchval("SELECT unconfirmed_offers FROM retailers WHERE retailer_id = 'other'") == "show"


def test_the_page_speaks_french(client: TestClient, figures: None) -> None:
    logged_in(client, ADMIN)
    page = client.get("/admin/quality?lang=fr").text
    assert "<h1>Qualité des données</h1>" in page and "Liens panier en échec" in page


async def test_an_admin_runs_a_check_on_demand_and_only_an_admin(
    client: TestClient, figures: None, db: asyncpg.Connection
) -> None:
    await db.execute("UPDATE retailer_quality SET checked_at = now() - interval '1 day'")
    logged_in(client, SHOP)
    csrf = csrf_of(client.get("/admin/quality").text)
    assert client.post("/admin/quality/check", data={"csrf": csrf}).status_code == 404
    client.cookies.clear()
    logged_in(client, ADMIN)
    page = client.get("/admin/quality").text
    csrf = csrf_of(page.split('action="/admin/quality/check"', 1)[1])
    answer = client.post("/admin/quality/check", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/quality?checking=1"
    for _ in range(100):  # the check runs in the worker, in the background
        if await db.fetchval("SELECT bool_and(checked_at > now() - interval '1 minute') FROM retailer_quality"):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("no check ran")
    # No offer in this catalog: what the check found replaced the stored figures.
    assert await db.fetchval("SELECT sum(offers_unconfirmed) FROM retailer_quality") == 0
