"""The dashboard (`/admin/`) and its CSV export: figures of the events sent, scoped per role, filters in the URL.

Events are put on the stream before the app starts; its own aggregator counts them, as in
production. The page is read as a person reads it (the tables' text), the export as a
spreadsheet does, and both are compared figure by figure.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import redis.asyncio as aioredis
from office_site import ACME, ADMIN, GLOBEX, SHOP, assert_csv_is_the_screen, logged_in, screen_of
from starlette.testclient import TestClient

from backoffice import dashboard
from cache.keys import Keys
from edge_api.app import create_app
from edge_api.event_buffer import append_events
from edge_api.settings import Settings
from tests.edge_api.test_admin import ACME as ACME_JWT
from tests.edge_api.test_admin import beacon, click


@pytest.fixture
async def events(redis: aioredis.Redis, keys: Keys, db: asyncpg.Connection, people: None) -> None:
    """Catalog names and the widget's and clicks' events, on the stream before the app starts."""
    await db.execute(
        "INSERT INTO retailers (retailer_id, name, cart_url_template) VALUES"
        " ('shop', 'Shop Express', 'https://shop.example/{gtin}'), ('mart', 'Mart', 'https://mart.example/{gtin}')"
    )
    await append_events(redis, keys, [
        beacon("impression", "spring"), beacon("impression", "spring"), beacon("impression", "rival"),
        beacon("open", "spring"), beacon("open", "spring"), beacon("open", "autumn", region="FR-69"),
        beacon("search", "spring", shown='[["shop","in_store",2],["mart","delivery",1]]'),
        beacon("search", "autumn", region="FR-69"),
        click("spring", "shop", "in_store", 299), click("spring", "mart", "delivery", 150),
        click("autumn", "shop", "click_collect", 1250),
        beacon("open", "rival"), click("rival", "shop", "in_store", 500),
    ])


def counted(client: TestClient) -> None:
    """Wait until the app's aggregator has counted every click (4), as an admin sees them."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if screen_of(client.get("/admin/").text).totals.get("clicks") == "4":
            return
        time.sleep(0.1)
    raise AssertionError("the aggregator did not count the events in 20 s")


@pytest.fixture
def office(settings: Settings, events: None) -> Iterator[TestClient]:
    """An app whose aggregator has counted the events; log in with `logged_in(office, EMAIL)`."""
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        logged_in(client, ADMIN)
        counted(client)
        client.cookies.clear()
        yield client


def test_dashboard_shows_the_figures_of_the_events_sent(office: TestClient) -> None:
    logged_in(office, ACME)
    page = office.get("/admin/")
    assert page.status_code == 200
    screen = screen_of(page.text)
    assert screen.totals == {
        "loads": "2", "opens": "3", "searches": "2", "searches_with_offers": "1", "searches_without_offers": "1",
        "offers_shown": "3", "clicks": "3", "click_through_rate": "100.00%", "intent_value": "16.99\u00a0EUR",
    }
    assert screen.tables["retailer"]["shop"] == {"offers_shown": "2", "clicks": "2", "intent_value": "15.49\u00a0EUR"}
    assert set(screen.tables["mode"]) == {"in_store", "delivery", "click_collect"}
    assert screen.tables["region"]["FR-69"]["opens"] == "1" and screen.tables["region"]["FR-75"]["opens"] == "2"
    today = datetime.now(UTC).date()
    assert len(screen.tables["day"]) == 30 and screen.tables["day"][today.isoformat()]["clicks"] == "3"
    # Names as brands know them: the campaign's label, the retailer's name, the mode, the département.
    for name in ("Jar 400 g", "Shop Express", "Click &amp; collect", "Rhône", "Paris"):
        assert name in page.text, name


def test_a_brand_sees_none_of_another_brands_figures(office: TestClient) -> None:
    logged_in(office, GLOBEX)
    screen = screen_of(office.get("/admin/").text)
    assert (screen.totals["opens"], screen.totals["clicks"], screen.totals["intent_value"]) == ("1", "1",
                                                                                                "5.00\u00a0EUR")
    assert screen.tables["retailer"] == {"shop": {"offers_shown": "0", "clicks": "1", "intent_value": "5.00\u00a0EUR"}}
    campaigns = office.get("/admin/").text.split('id="f-campaign"')[1].split("</select>")[0]
    assert 'value="rival"' in campaigns and 'value="spring"' not in campaigns


@pytest.mark.parametrize("path", ["/admin/", "/admin/export.csv"])
def test_another_brands_campaign_is_not_found(office: TestClient, path: str) -> None:
    logged_in(office, ACME)
    answers = [office.get(path, params={"campaign": campaign}) for campaign in ("rival", "nosuch", "spring,rival")]
    assert [answer.status_code for answer in answers] == [404, 404, 404]
    # The same page whether the campaign exists or not: no hint either way.
    assert "Not found" in answers[0].text and answers[0].text == answers[1].text == answers[2].text


def test_another_brands_campaign_is_not_found_in_the_json_either(office: TestClient) -> None:
    answer = office.get("/admin/v1/stats", params={"campaign": "rival"}, headers=ACME_JWT)
    assert answer.status_code == 404 and answer.json()["error"]["parameter"] == "campaign"


def test_a_retailer_sees_its_own_rows_and_not_another_retailers(office: TestClient) -> None:
    logged_in(office, SHOP)
    screen = screen_of(office.get("/admin/").text)
    assert set(screen.tables["retailer"]) == {"shop"}
    assert screen.totals == {"offers_shown": "2", "clicks": "3", "intent_value": "20.49\u00a0EUR"}
    assert office.get("/admin/", params={"retailer": "mart"}).status_code == 404
    assert office.get("/admin/export.csv", params={"retailer": "mart"}).status_code == 404


def test_filters_narrow_the_figures_and_stay_in_the_url(office: TestClient) -> None:
    logged_in(office, ACME)
    page = office.get("/admin/", params={"campaign": "autumn", "mode": "", "region": "FR-69"})
    screen = screen_of(page.text)
    # autumn's click came from Paris: not in the Rhône's figures.
    assert (screen.totals["opens"], screen.totals["searches_without_offers"], screen.totals["clicks"]) == (
        "1", "1", "0")
    assert '<option value="autumn" selected>' in page.text and 'value="FR-69"' in page.text
    delivery = screen_of(office.get("/admin/", params={"mode": "delivery"}).text)
    # Loads, opens and searches have no mode: a mode filter leaves what follows the choice.
    assert delivery.totals == {"offers_shown": "1", "clicks": "1", "intent_value": "1.50\u00a0EUR"}
    product = screen_of(office.get("/admin/", params={"gtin": "3017620422003"}).text)
    assert product.totals == screen_of(office.get("/admin/").text).totals
    past = screen_of(office.get("/admin/", params={"from": "2020-01-01", "to": "2020-01-31"}).text)
    assert past.totals["opens"] == "0" and len(past.tables["day"]) == 31


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "yesterday"}, "from"),
    ({"from": "2026-02-01", "to": "2026-01-01"}, "from"),
    ({"from": "2020-01-01", "to": "2026-01-01"}, "from"),
    ({"gtin": "3017620422004"}, "gtin"),
    ({"mode": "by_drone"}, "mode"),
    ({"region": "paris"}, "region"),
    ({"campaign": "no spaces"}, "campaign"),
    ({"to": "9999-12-31"}, "to"),
    ({"to": "0001-01-05"}, "to"),
])
def test_a_bad_filter_is_a_400_page_naming_it(office: TestClient, params: dict[str, str], field: str) -> None:
    logged_in(office, ACME)
    page = office.get("/admin/", params=params)
    assert page.status_code == 400
    assert f'<a href="#f-{field}">' in page.text and f"<code>{field}</code>" in page.text
    assert re.search(f'id="f-{field}"[^>]*aria-invalid="true"', page.text), "the field is not marked invalid"
    assert office.get("/admin/export.csv", params=params).status_code == 400


def test_export_holds_exactly_the_figures_on_screen(office: TestClient) -> None:
    logged_in(office, ADMIN)
    for params in ({}, {"campaign": "spring"}, {"retailer": "shop"}, {"region": "FR-69"}, {"mode": "in_store"}):
        page = office.get("/admin/", params=params)
        export = office.get("/admin/export.csv", params=params)
        assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
        assert_csv_is_the_screen(page.text, export.text)


def test_export_names_its_period_and_is_the_pages_link(office: TestClient) -> None:
    logged_in(office, ACME)
    page = office.get("/admin/", params={"from": "2026-01-01", "to": "2026-01-31", "campaign": "spring"})
    link = page.text.split('class="download" href="')[1].split('"')[0].replace("&amp;", "&")
    assert link.startswith("/admin/export.csv?") and "campaign=spring" in link
    export = office.get(link)
    assert export.headers["content-disposition"] == (
        'attachment; filename="nearcart-figures-2026-01-01-to-2026-01-31.csv"')
    default = office.get("/admin/export.csv")
    today = datetime.now(UTC).date()
    since = today - timedelta(days=29)
    assert f"nearcart-figures-{since.isoformat()}-to-{today.isoformat()}.csv" in default.headers[
        "content-disposition"]


def test_the_export_needs_a_session(office: TestClient) -> None:
    answer = office.get("/admin/export.csv", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/login"


def test_the_daily_series_reaches_the_chart_as_escaped_json(office: TestClient,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard, "CHART_AVAILABLE", True)
    logged_in(office, ACME)
    page = office.get("/admin/").text
    data = page.split('<script type="application/json" id="daily-data">')[1].split("</script>")[0]
    assert "<" not in data and json.loads(data)["series"][0]["label"] == "Opens"
    assert len(json.loads(data)["days"]) == 30
    assert '<script src="/admin/static/vendor/uPlot.iife.min.js" defer></script>' in page
    assert "<script>" not in page  # no inline script: the CSP says script-src 'self'
    assert "script-src 'self'" in office.get("/admin/").headers["content-security-policy"]


def test_without_the_chart_library_the_page_is_tables_only(office: TestClient,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard, "CHART_AVAILABLE", False)
    logged_in(office, ACME)
    page = office.get("/admin/").text
    assert "uPlot" not in page and "daily-data" not in page
    assert '<details class="daily" open>' in page
    assert screen_of(page).totals["clicks"] == "3"


def test_the_dashboard_speaks_french(office: TestClient) -> None:
    logged_in(office, ACME)
    page = office.get("/admin/", params={"lang": "fr"}).text
    for words in ("Ouvertures", "Taux de clic", "Valeur d'intention d'achat", "Par enseigne", "Télécharger en CSV"):
        assert words.replace("'", "&#39;") in page, words
    assert screen_of(page).totals["intent_value"] == "16,99\u00a0EUR"
