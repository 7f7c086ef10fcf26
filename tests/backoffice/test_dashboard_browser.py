"""The dashboard in Debian's Chromium: a brand sees the figures of the traffic the test made, filters, exports, leaves.

The traffic is real: the demo catalog served by `nearcart serve`, offers asked through
`/v1/offers`, beacons posted to `/v1/events` and clicks followed through `/v1/go` from
shoppers' addresses (X-Forwarded-For from the trusted loopback proxy). The server's own
aggregator is off; the test runs one, as `nearcart events aggregate` would, then looks.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from office_site import ACME, PASSWORD, Served, assert_csv_is_the_screen, prepare_site, screen_of
from playwright.sync_api import Browser, BrowserContext, Page, expect

from backoffice.aggregator import aggregate_once
from backoffice.dashboard import CHART_LIBRARY
from cache.keys import Keys
from edge_api.settings import Settings
from geo.geoip import GeoIP, default_database
from geo.region import region_of
from loadtest.stack import demo_settings, serve_nearcart

DEMO_BRAND = "mia@nearcart-demo.example"
# Shoppers' addresses: two in Paris, one in the Val-d'Oise, one in Great Britain (the packaged GeoLite2's places).
SHOPPERS = ("78.192.0.1", "78.192.0.1", "82.64.0.1", "81.2.69.160")
PARIS = {"lat": "48.8566", "lon": "2.3522"}


def in_a_thread(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a coroutine to its end on a loop of its own (sync Playwright keeps one running in this thread)."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(make())))
    thread.start()
    thread.join(60)
    assert result, "the coroutine did not finish"
    return result[0]


@pytest.fixture(scope="module")
def site(services: tuple[str, str]) -> Iterator[Served]:
    with demo_settings(services, trusted_proxies=("127.0.0.1/32",), aggregate_events=False) as settings:
        # acme's and globex's people and campaigns, and a brand for the demo campaign
        prepare_site(settings.database_url, more_people={DEMO_BRAND: "brand:nearcart-demo"})
        with serve_nearcart(settings) as base_url:
            yield Served(base_url, settings)


@pytest.fixture(scope="module")
def server_started(site: Served) -> Served:
    """What conftest's Playwright waits for."""
    return site


def _request(site: Served, method: str, path: str, shopper: str, body: Any = None) -> tuple[int, bytes]:
    host = urllib.parse.urlsplit(site.base_url)
    conn = http.client.HTTPConnection(host.hostname or "", host.port, timeout=10)
    headers = {"X-Forwarded-For": shopper, "Content-Type": "application/json"}
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


@dataclass
class Sent:
    """What the shoppers did, counted by the test itself."""

    events: int = 0
    loads: int = 0
    opens: int = 0
    searches: int = 0
    with_offers: int = 0
    shown: int = 0
    clicks: Counter[str] = field(default_factory=Counter)
    cents: int = 0
    regions: Counter[str] = field(default_factory=Counter)


@pytest.fixture(scope="module")
def traffic(site: Served) -> Sent:
    """The shoppers' traffic, counted by one aggregator run."""
    sent = shop(site)
    aggregate(site.settings, sent.events)
    return sent


def shop(site: Served) -> Sent:
    """Each shopper loads the widget, opens it, searches (one search finds nothing) and follows one or two offers."""
    status, raw = _request(site, "GET", "/v1/campaigns/demo", SHOPPERS[0])
    assert status == 200
    gtins = [product["gtin"] for product in json.loads(raw)["products"]]
    sent = Sent()
    geoip = GeoIP(default_database())
    for n, shopper in enumerate(SHOPPERS):
        gtin = gtins[n % len(gtins)]
        status, raw = _request(site, "GET", "/v1/offers?" + urllib.parse.urlencode({"gtin": gtin, **PARIS,
                                                                                    "campaign": "demo"}), shopper)
        assert status == 200
        offers = json.loads(raw)["offers"]
        assert offers, "the demo catalog has offers for its campaign's products in Paris"
        shown = Counter((offer["retailer"]["id"], offer["mode"]) for offer in offers)
        now = int(time.time() * 1000)
        beacons = [
            {"type": "impression", "campaign": "demo", "gtin": gtin, "ts": now},
            {"type": "open", "campaign": "demo", "gtin": gtin, "ts": now},
            {"type": "search", "campaign": "demo", "gtin": gtin, "ts": now,
             "shown": [[retailer, mode, count] for (retailer, mode), count in shown.items()]},
        ]
        if n == 0:  # a postal code far from every store
            beacons.append({"type": "search", "campaign": "demo", "gtin": gtin, "ts": now, "shown": []})
        assert _request(site, "POST", "/v1/events", shopper, beacons)[0] == 204
        for offer in offers[: 1 + n % 2]:
            link = urllib.parse.urlsplit(offer["url"]).path
            if offer["store"] is not None:
                link += "?m=" + offer["mode"]  # as the widget says which of the store's modes was clicked
            assert _request(site, "GET", link, shopper)[0] == 302
            sent.clicks[offer["mode"]] += 1
            sent.cents += int(Decimal(offer["price"]["amount"]) * 100)
        sent.events += len(beacons) + 1 + n % 2
        sent.loads, sent.opens = sent.loads + 1, sent.opens + 1
        sent.searches += len(beacons) - 2
        sent.with_offers += 1
        sent.shown += len(offers)
        sent.regions[region_of(geoip.lookup(shopper))] += 1
    geoip.close()
    return sent


def aggregate(settings: Settings, entries: int) -> None:
    """One aggregator, run until it has counted every entry the shoppers made."""

    async def drain() -> None:
        redis = aioredis.Redis.from_url(settings.redis_url)
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
        try:
            counted, deadline = 0, time.monotonic() + 30
            while counted < entries and time.monotonic() < deadline:
                found = await aggregate_once(redis, Keys(settings.redis_prefix), pool, consumer="browser-test")
                counted += found
                if not found:
                    await asyncio.sleep(0.1)
            assert counted == entries, f"{counted} of {entries} entries counted"
        finally:
            await pool.close()
            await redis.aclose()

    in_a_thread(drain)


def log_in(page: Page, site: Served, email: str) -> None:
    page.goto(f"{site.base_url}/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page.locator("h1")).to_have_text("Dashboard")


def money(cents: int) -> str:
    return f"{cents // 100:,}.{cents % 100:02d}\u00a0EUR"


def test_a_brand_sees_its_traffic_filters_exports_and_logs_out(context: BrowserContext, site: Served, traffic: Sent,
                                                               tmp_path: Path) -> None:
    sent = traffic
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text
            else None)
    log_in(page, site, DEMO_BRAND)

    cards = screen_of(page.content()).totals
    clicks = sum(sent.clicks.values())
    assert cards == {
        "loads": str(sent.loads), "opens": str(sent.opens), "searches": str(sent.searches),
        "searches_with_offers": str(sent.with_offers), "searches_without_offers": str(sent.searches - sent.with_offers),
        "offers_shown": str(sent.shown), "clicks": str(clicks),
        "click_through_rate": f"{clicks / sent.opens * 100:.2f}%", "intent_value": money(sent.cents),
    }
    regions = screen_of(page.content()).tables["region"]
    assert {key: int(row["opens"]) for key, row in regions.items()} == dict(sent.regions)
    # Départements named as brands know them, the code beside.
    expect(page.locator('table[data-table="region"] tr[data-key="FR-75"] th')).to_have_text("Paris FR-75")
    assert CHART_LIBRARY.exists(), "no chart library: ./run test copies it (cd backoffice, npm ci, npm run build)"
    expect(page.locator("#daily-chart canvas")).to_be_visible()
    assert not refused, refused

    # A filter is a plain GET form: the view lands in the URL, to bookmark or share.
    mode, count = sent.clicks.most_common(1)[0]
    page.get_by_label("Mode", exact=True).focus()
    page.get_by_label("Mode", exact=True).select_option(mode)
    page.keyboard.press("Tab")  # to the region field, where Enter submits the form
    expect(page.get_by_label("Region", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/?*")
    assert f"mode={mode}" in page.url
    expect(page.locator('dl.totals [data-figure="clicks"] dd')).to_have_text(str(count))
    expect(page.locator('dl.totals [data-figure="opens"]')).to_have_count(0)  # opens come before a mode exists

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.startswith("nearcart-figures-") and saved.suffix == ".csv"
    assert_csv_is_the_screen(page.content(), saved.read_text())

    page.get_by_role("button", name="Log out").click()
    expect(page.locator("h1")).to_have_text("Sign in")
    page.goto(f"{site.base_url}/admin/?mode={mode}")
    expect(page.locator("h1")).to_have_text("Sign in")


def test_another_brand_gets_not_found_for_the_demo_campaigns_figures(context: BrowserContext, site: Served,
                                                                     traffic: Sent) -> None:
    page = context.new_page()
    log_in(page, site, ACME)
    for path in ("/admin/?campaign=demo", "/admin/export.csv?campaign=demo"):
        answer = page.goto(site.base_url + path) if path.startswith("/admin/?") else page.request.get(
            site.base_url + path)
        assert answer is not None and answer.status == 404, path
    expect(page.locator("h1")).to_have_text("Not found")


def test_the_dashboard_reads_without_javascript(browser: Browser, site: Served, traffic: Sent) -> None:
    context = browser.new_context(locale="fr-FR", java_script_enabled=False)
    context.set_default_timeout(20_000)
    try:
        page = context.new_page()
        page.goto(f"{site.base_url}/admin/login")
        page.get_by_label("E-mail").fill(DEMO_BRAND)
        page.get_by_label("Mot de passe").fill(PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        expect(page.locator("h1")).to_have_text("Tableau de bord")
        expect(page.locator("#daily-chart")).to_be_hidden()
        page.get_by_text("Par jour").click()  # the daily table opens without script (<details>)
        expect(page.locator('table[data-table="day"]')).to_be_visible()
        page.get_by_label("Région", exact=True).fill("FR-75")
        page.get_by_role("button", name="Afficher").click()
        assert "region=FR-75" in page.url
        expect(page.locator('table[data-table="region"] tbody tr')).to_have_count(1)
        opens = page.locator('table[data-table="region"] tr[data-key="FR-75"] td[data-figure="opens"]')
        expect(opens).to_have_text(str(traffic.regions["FR-75"]))
    finally:
        context.close()
