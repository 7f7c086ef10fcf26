"""A retailer's whole way in, in Debian's Chromium against `nearcart serve`: invited, joined, profile, feeds.

The server fixtures are test_office_browser.py's (a server of this module's own), the browser conftest's.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from office_site import ADMIN, PASSWORD, Served
from playwright.sync_api import BrowserContext, expect
from test_office_browser import log_in_with_the_keyboard, office, server_started

# The fixtures, used by name: imported so pytest finds them here (Chromium comes from conftest.py).
__all__ = ["office", "server_started"]

EMAIL = "carla@corner.example"
TEMPLATE = "https://corner.example/basket/add?ean={gtin}&store={store_id}"
STORES = (
    "retailer_id,store_id,name,address,postal_code,city,country,lat,lon\n"
    ",c1,Corner Marais,3 rue des Archives,75004,Paris,FR,48.8575,2.3556\n"
)
# Line 3: a GTIN whose check digit is wrong; line 4: a store the retailer does not have; line 5: another retailer.
OFFERS = (
    "retailer_id,store_id,gtin,price,currency,quantity,modes,updated_at\n"
    "corner,c1,3017620422003,2.95,EUR,6,in_store|click_collect,2024-05-01T10:00:00+02:00\n"
    "corner,c1,3017620422004,2.95,EUR,6,in_store,2024-05-01T10:00:00+02:00\n"
    "corner,c9,3017620422003,2.95,EUR,6,in_store,2024-05-01T10:00:00+02:00\n"
    "shop,s1,3017620422003,0.01,EUR,6,in_store,2024-05-01T10:00:00+02:00\n"
)


def test_an_invited_retailer_joins_fills_its_profile_and_uploads_its_feeds(
    context: BrowserContext, office: Served, tmp_path: Path
) -> None:
    base_url = office.base_url
    admin = context.new_page()
    log_in_with_the_keyboard(admin, base_url, ADMIN)
    admin.get_by_role("link", name="Retailers").click()
    admin.get_by_role("link", name="Invite a retailer").click()
    admin.get_by_label("Retailer id").fill("corner")
    admin.get_by_label("Email").fill(EMAIL)
    admin.get_by_role("button", name="Invite").click()
    link = admin.locator("#invite-link").input_value()
    assert re.fullmatch(re.escape(base_url) + r"/admin/join/[A-Za-z0-9_-]{43}", link)
    admin.get_by_role("button", name="Log out").click()

    # The retailer opens its link, chooses a password and lands on its own page.
    page = context.new_page()
    page.goto(link)
    expect(page.locator("h1")).to_have_text("Join nearcart")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Open my account").click()
    expect(page.locator("h1")).to_have_text("Retailer corner")
    page.get_by_label("Name", exact=True).fill("Corner Shop")
    page.get_by_label("Basket-link template", exact=True).fill(TEMPLATE)
    page.get_by_role("button", name="Save").click()
    # Not saved yet: the link it makes is shown first, for a sample product (no offer yet).
    expect(page.locator("#test-link")).to_have_text(
        "https://corner.example/basket/add?ean=03017620422003&store=STORE-1")
    page.get_by_role("button", name="Confirm and save").click()
    expect(page.get_by_role("status")).to_have_text("Profile saved.")
    expect(page.locator("table.template-history tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Log out").click()

    # Later: it signs in and sends its stores, then a partly bad stock feed.
    log_in_with_the_keyboard(page, base_url, EMAIL)
    page.get_by_role("link", name="Feeds").first.click()
    expect(page.locator("h1")).to_have_text("Feeds of corner")
    stores = tmp_path / "stores.csv"
    stores.write_text(STORES, encoding="utf-8")
    page.get_by_label("The file holds").select_option("stores")
    page.get_by_label(re.compile("^File")).set_input_files(stores)
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#upload-status")).to_have_text("ok")

    offers = tmp_path / "stock.csv"
    offers.write_text(OFFERS, encoding="utf-8")
    page.get_by_role("link", name="Feeds of corner").click()
    page.get_by_label("The file holds").select_option("offers")
    page.get_by_label(re.compile("^File")).set_input_files(offers)
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#upload-status")).to_have_text("rejected rows")
    rejects = page.locator("table.rejects tbody tr")
    expect(rejects).to_have_count(3)
    expect(rejects.nth(0)).to_contain_text("gtin")
    expect(rejects.nth(1)).to_contain_text("unknown store")
    expect(rejects.nth(2)).to_contain_text('names retailer "shop"')
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the report (CSV)").click()
    saved = tmp_path / "report.csv"
    download.value.save_as(saved)
    rows = list(csv.reader(saved.read_text(encoding="utf-8-sig").splitlines()))
    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("file", "line", "field"), ("stock.csv", "3", "gtin"), ("stock.csv", "4", "store_id"),
        ("stock.csv", "5", "retailer_id")]

    # Its one good row is its one offer now.
    corner = office.admin_json("/admin/v1/retailers/corner/offers")["offers"]
    assert [(o["store_id"], o["gtin"], o["price"]) for o in corner] == [
        ("c1", "03017620422003", "2.95")]
    # The history lists both runs, newest first, with their counts.
    page.get_by_role("link", name="Feeds of corner").click()
    runs = page.locator("table.runs tbody tr")
    expect(runs).to_have_count(2)
    expect(runs.nth(0)).to_contain_text("rejected rows")
    expect(runs.nth(1)).to_contain_text("stores")
