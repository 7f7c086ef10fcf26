"""The widget in a real Chromium, against `nearcart serve` on real Redis and PostgreSQL, as a shopper uses it."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, Request, expect
from widget_site import GTIN, WIDGET, Site

DIALOG = "nearcart-widget [role=dialog]"


def open_widget(page: Page, site: Site, fixture: str = "basic.html", button: str = "[data-nearcart-gtin]") -> None:
    page.goto(f"{site.brand}/{fixture}")
    page.locator(button).first.click()
    expect(page.locator(f"{DIALOG} section").first).to_be_visible()


def shadow_active(page: Page) -> str:
    """What has focus, seen through the widget's open shadow root."""
    return str(
        page.evaluate(
            """() => { let el = document.activeElement;
                       while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
                       return el ? el.outerHTML.slice(0, 120) : ''; }"""
        )
    )


def test_click_shows_offers_by_mode_and_an_offer_leads_to_the_retailer_basket(
    context: BrowserContext, site: Site
) -> None:
    page = context.new_page()
    offers_calls: list[str] = []
    page.on("request", lambda r: offers_calls.append(r.url) if "/v1/offers" in r.url else None)
    open_widget(page, site)

    modes = page.locator(f"{DIALOG} section").evaluate_all("els => els.map(e => e.dataset.mode)")
    assert modes == ["delivery", "click_collect", "in_store"]
    in_store = page.locator(f"{DIALOG} section[data-mode=in_store] a")
    expect(in_store).to_have_count(2)  # Bastille and Italie; Lyon is too far, Montparnasse is out of stock
    expect(in_store.first).to_contain_text("Hyper Italie")  # nearest first from Paris 13e
    expect(in_store.first).to_contain_text("2,89 €")
    expect(in_store.first).to_contain_text("En stock")
    expect(in_store.first).to_contain_text("km")
    expect(page.locator(f"{DIALOG} h3").first).to_have_text("Livraison à domicile")  # campaign locale: fr
    assert len(offers_calls) == 1  # one request from click to offers on screen

    delivery = page.locator(f"{DIALOG} section[data-mode=delivery] a")
    with context.expect_page() as popup:
        delivery.click()
    basket = popup.value
    basket.wait_for_load_state()
    assert basket.url.startswith("https://www.shop.example/cart?")
    query = parse_qs(urlsplit(basket.url).query)
    assert query["ean"] == [GTIN.zfill(14)]
    expect(basket.locator("h1")).to_have_text("Votre panier")


def test_postal_code_requery_shows_stores_near_that_place(context: BrowserContext, site: Site) -> None:
    page = context.new_page()
    open_widget(page, site)
    page.locator(f"{DIALOG} input[name=postal_code]").fill("69002")
    page.locator(f"{DIALOG} form button[type=submit]").click()
    expect(page.locator(f"{DIALOG} section[data-mode=in_store] a")).to_have_count(1)
    expect(page.locator(f"{DIALOG} section[data-mode=in_store] a")).to_contain_text("Hyper Bellecour")


@pytest.fixture
def browser_context_lyon(context: BrowserContext) -> BrowserContext:
    context.grant_permissions(["geolocation"])
    context.set_geolocation({"latitude": 45.7601, "longitude": 4.8357})
    return context


def test_use_my_location_requeries_with_the_browser_position(browser_context_lyon: BrowserContext, site: Site) -> None:
    page = browser_context_lyon.new_page()
    open_widget(page, site)
    page.locator(f"{DIALOG} button.alt").click()
    expect(page.locator(f"{DIALOG} section[data-mode=in_store] a")).to_contain_text("Hyper Bellecour")


def test_keyboard_only_shopper_opens_browses_and_closes(context: BrowserContext, site: Site) -> None:
    page = context.new_page()
    page.goto(f"{site.brand}/basic.html")
    expect(page.locator(".buy")).to_be_visible()
    page.wait_for_function("() => window.NearCart && window.NearCart.loaded")
    page.keyboard.press("Tab")
    assert "data-nearcart-gtin" in shadow_active(page)
    page.keyboard.press("Enter")
    expect(page.locator(f"{DIALOG} section").first).to_be_visible()
    links = page.locator(f"{DIALOG} a[href]").count()
    controls = links + 4  # close, postal code, search, use my location
    # Tab all the way round: focus never leaves the dialog (focus trap) and comes back to the first control.
    for _ in range(controls + 1):
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.tagName") == "NEARCART-WIDGET"
    assert 'class="x"' in shadow_active(page)
    page.keyboard.press("Shift+Tab")
    assert "<a " in shadow_active(page)  # Shift+Tab from the first control wraps to the last offer
    page.keyboard.press("Escape")
    expect(page.locator(DIALOG)).to_be_hidden()
    assert "data-nearcart-gtin" in shadow_active(page)  # focus is back on the buy button


def test_hostile_host_css_does_not_hide_or_restyle_the_widget(context: BrowserContext, site: Site) -> None:
    page = context.new_page()
    open_widget(page, site, "hostile.html", ".buy")
    dialog = page.locator(DIALOG)
    expect(dialog).to_be_visible()
    close = page.locator(f"{DIALOG} button.x")
    expect(close).to_be_visible()  # `button { display: none !important }` stays outside
    box = dialog.bounding_box()
    assert box is not None and box["width"] > 250 and box["height"] > 200
    color = page.locator(f"{DIALOG} h3").first.evaluate("el => getComputedStyle(el).color")
    assert color != "rgb(255, 0, 0)"
    expect(page.locator(f"{DIALOG} section a").first).to_be_visible()
    close.click()
    expect(dialog).to_be_hidden()


def test_strict_csp_page_works_without_violations(context: BrowserContext, site: Site) -> None:
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    open_widget(page, site, "csp.html", "button")
    expect(page.locator(f"{DIALOG} section a").first).to_be_visible()
    # The constructable stylesheet applied: the theme colour from the campaign reaches the buttons.
    submit = page.locator(f"{DIALOG} form button[type=submit]")
    background = submit.evaluate("el => getComputedStyle(el).backgroundColor")
    assert background == "rgb(122, 62, 29)"  # #7a3e1d
    assert violations == []


def test_video_shows_a_buy_button_between_its_seconds(context: BrowserContext, site: Site) -> None:
    page = context.new_page()
    page.goto(f"{site.brand}/csp.html")
    overlay = page.locator("nearcart-buy button")
    expect(overlay).to_be_visible(timeout=30_000)  # the video plays past 1 s
    overlay.click()
    expect(page.locator(f"{DIALOG} section").first).to_be_visible()
    page.keyboard.press("Escape")
    page.evaluate("() => { const v = document.querySelector('video'); v.pause(); v.currentTime = 0.2; }")
    expect(overlay).to_be_hidden()


def test_api_down_shows_the_campaign_fallback_links(context: BrowserContext, site: Site) -> None:
    page = context.new_page()
    page.route("**/v1/offers**", lambda route: route.abort("connectionrefused"))
    page.goto(f"{site.brand}/basic.html")
    page.locator(".buy").click()
    fallback = page.locator(f"{DIALOG} .fallback a")
    expect(fallback).to_have_text("ShopNet en ligne")
    expect(fallback).to_have_attribute("href", "https://www.shop.example/p/nutella")


def test_slow_api_gives_up_after_two_seconds_for_the_fallback_links(context: BrowserContext, site: Site) -> None:
    page = context.new_page()
    stalled: list[object] = []
    page.route("**/v1/offers**", lambda route: stalled.append(route))  # never answered: a hung API
    page.goto(f"{site.brand}/basic.html")
    page.locator(".buy").click()
    expect(page.locator(f"{DIALOG} .fallback a")).to_have_text("ShopNet en ligne", timeout=10_000)
    assert stalled


def test_no_cookie_no_storage_and_no_cookie_sent(context: BrowserContext, site: Site) -> None:
    page = context.new_page()
    cookie_headers: list[str] = []
    page.on("request", lambda r: cookie_headers.append(r.url) if "cookie" in r.headers else None)
    open_widget(page, site)
    page.locator(f"{DIALOG} input[name=postal_code]").fill("75011")
    page.locator(f"{DIALOG} form button[type=submit]").click()
    expect(page.locator(f"{DIALOG} section").first).to_be_visible()
    assert context.cookies() == []
    assert page.evaluate("() => [document.cookie, localStorage.length, sessionStorage.length]") == ["", 0, 0]
    assert cookie_headers == []


def test_beacons_reach_the_api_batched(context: BrowserContext, site: Site) -> None:
    page = context.new_page()
    beacons: list[Request] = []
    page.on("request", lambda r: beacons.append(r) if r.url.endswith("/v1/events") else None)
    with page.expect_request(lambda r: r.url.endswith("/v1/events") and '"search"' in (r.post_data or "")) as sent:
        open_widget(page, site)
    sent.value.response()
    events = [event for beacon in beacons for event in json.loads(beacon.post_data or "[]")]
    types = [event["type"] for event in events]
    assert "impression" in types and "open" in types and "search" in types
    search = next(event for event in events if event["type"] == "search")
    assert all(len(group) == 3 and group[2] >= 1 for group in search["shown"])
    assert len(beacons) < len(events)  # batched: fewer requests than events
    assert {event["campaign"] for event in events} == {"e2e"}
    assert {event["gtin"] for event in events} == {GTIN}
    statuses = [beacon.response().status for beacon in beacons]  # type: ignore[union-attr]
    assert statuses and set(statuses) == {204}


def test_buttons_added_later_open_the_widget(context: BrowserContext, site: Site) -> None:
    page = context.new_page()
    page.goto(f"{site.brand}/basic.html")
    page.wait_for_function("() => window.NearCart && window.NearCart.loaded")
    page.evaluate(
        """() => { const a = document.createElement('a'); a.href = '#'; a.id = 'late';
                   a.dataset.nearcartGtin = '3017620422003'; a.textContent = 'Acheter';
                   document.getElementById('products').append(a); }"""
    )
    page.evaluate(
        """() => { document.body.dataset.seen = '';
                   for (const t of ['nearcart:open', 'nearcart:close'])
                     document.addEventListener(t, () => { document.body.dataset.seen += t + ' '; }); }"""
    )
    page.locator("#late").click()
    expect(page.locator(f"{DIALOG} section").first).to_be_visible()
    page.evaluate("() => NearCart.close()")
    expect(page.locator(DIALOG)).to_be_hidden()
    expect(page.locator("body")).to_have_attribute("data-seen", "nearcart:open nearcart:close ")
    assert page.evaluate("() => location.hash") == ""  # the link's own navigation was prevented


def test_script_twice_gives_one_widget_and_an_early_call_is_not_lost(context: BrowserContext, site: Site) -> None:
    page = context.new_page()
    page.goto(f"{site.brand}/twice.html")
    expect(page.locator(f"{DIALOG} section").first).to_be_visible()  # the queued NearCart.open ran
    expect(page.locator("nearcart-widget")).to_have_count(1)
    globals_added = page.evaluate(
        """() => { const f = document.createElement('iframe'); document.body.append(f);
                   const clean = new Set(Object.getOwnPropertyNames(f.contentWindow)); f.remove();
                   return Object.getOwnPropertyNames(window).filter(n => !clean.has(n)); }"""
    )
    assert globals_added == ["NearCart"]


def test_axe_finds_no_serious_or_critical_violation(context: BrowserContext, site: Site) -> None:
    page = context.new_page()
    open_widget(page, site)
    page.add_script_tag(path=str(WIDGET / "node_modules" / "axe-core" / "axe.min.js"))
    result = page.evaluate("() => axe.run(document, { resultTypes: ['violations'] })")
    violations = result["violations"]
    serious = [(v["id"], v["impact"], v["help"]) for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == []


def test_bundle_fits_the_size_budget_and_prints_its_size(widget_dist: Path, capsys: object) -> None:
    import gzip

    code = (widget_dist / "nearcart.js").read_bytes()
    gz = len(gzip.compress(code, 9))
    print(f"\nnearcart.js: {len(code)} B raw, {gz} B gzip (budget 12288 B)")
    assert gz <= 12 * 1024, f"widget is {gz} B gzipped, over the 12 KB budget"


def test_manifest_integrity_matches_the_served_hashed_file(widget_dist: Path, site: Site) -> None:
    import base64
    import hashlib
    import urllib.request

    manifest = json.loads((widget_dist / "manifest.json").read_text())["nearcart.js"]
    with urllib.request.urlopen(f"{site.api}/cdn/v1/{manifest['file']}") as response:
        served = response.read()
        cache = response.headers["Cache-Control"]
    digest = "sha384-" + base64.b64encode(hashlib.sha384(served).digest()).decode()
    assert digest == manifest["integrity"]
    assert "immutable" in cache
