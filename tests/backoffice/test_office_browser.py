"""The back office in Debian's Chromium, against `nearcart serve` on real Redis and PostgreSQL, as staff use it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from office_site import ACME, GLOBEX, PASSWORD, Served, campaign_json, prepare_site
from playwright.sync_api import Browser, BrowserContext, Page, expect

from cache.embedded import free_port
from loadtest.stack import running, scratch_settings, settings_env


@pytest.fixture(scope="module")
def office(services: tuple[str, str]) -> Iterator[Served]:
    """`nearcart serve` with people and campaigns loaded (no index: the back office needs none)."""
    with scratch_settings(services, secret="office-browser-test-secret-32-bytes") as settings:
        prepare_site(settings.database_url, migrate=True)
        port = free_port()
        nearcart = Path(sys.executable).parent / "nearcart"
        command = [str(nearcart), "serve", "--host", "127.0.0.1", "--port", str(port)]
        with running(command, settings_env(settings), port, "/admin/login") as base_url:
            yield Served(base_url, settings)


@pytest.fixture(scope="module")
def server_started(office: Served) -> Served:
    """What conftest's Playwright waits for."""
    return office


def _stored(office: Served, campaign_id: str) -> dict[str, Any]:
    """The campaign as PostgreSQL holds it now, through the admin JSON API (no cache on that path)."""
    return office.admin_json(f"/admin/v1/campaigns/{campaign_id}")


def log_in_with_the_keyboard(page: Page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/admin/login")
    # The email field has focus on arrival (Chromium applies autofocus a frame after the load: wait for it, or the
    # first keys typed go nowhere on a busy machine); Tab reaches the password, Enter submits.
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Dashboard")


def test_log_in_fix_an_edit_restore_and_log_out(context: BrowserContext, office: Served) -> None:
    base_url = office.base_url
    page = context.new_page()
    log_in_with_the_keyboard(page, base_url, ACME)
    campaigns = page.locator("table.campaigns a")
    expect(campaigns).to_have_text(["autumn", "spring"])

    page.get_by_role("link", name="spring").click()
    expect(page.locator("h1")).to_have_text("Edit campaign spring")
    editor = page.get_by_label("Campaign JSON")
    original = json.loads(editor.input_value())
    assert original["products"][0]["label"] == "Jar 400 g"

    wrong = campaign_json(radius_km=500, products=[{"gtin": "3017620422003", "label": "Jar 750 g"}])
    editor.fill(json.dumps(wrong))
    page.get_by_role("button", name="Save").click()
    errors = page.locator("#errors")
    expect(errors).to_contain_text("Nothing was saved: 1 error(s).")
    expect(errors).to_contain_text("$.radius_km")
    # The error's link selects its line in the editor.
    errors.get_by_role("link", name="$.radius_km").click()
    selected = page.evaluate("() => { const t = document.activeElement; return t.id + ':' + "
                             "t.value.slice(t.selectionStart, t.selectionEnd); }")
    assert selected == 'json:  "radius_km": 500'  # the last field: no comma
    assert _stored(office, "spring")["radius_km"] == 20.0

    fixed = json.loads(editor.input_value())
    fixed["radius_km"] = 30
    editor.fill(json.dumps(fixed, indent=2))
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Version 2 saved.")
    assert _stored(office, "spring")["radius_km"] == 30
    expect(page.locator("table.history tbody tr")).to_have_count(2)

    page.get_by_role("link", name="Compare 1 → 2").click()
    expect(page.locator("pre.diff .del")).to_have_text(['-      "label": "Jar 400 g",', '-  "radius_km": 20.0,'])
    expect(page.locator("pre.diff .add")).to_have_text(['+      "label": "Jar 750 g",', '+  "radius_km": 30.0,'])
    page.get_by_role("link", name="Back to the campaign").click()

    page.get_by_role("button", name="Restore Version 1").click()
    expect(page.get_by_role("status")).to_have_text("Version 1 restored as version 3.")
    assert json.loads(page.get_by_label("Campaign JSON").input_value()) == original
    assert _stored(office, "spring")["products"][0]["label"] == "Jar 400 g"

    page.get_by_role("button", name="Log out").click()
    expect(page.locator("h1")).to_have_text("Sign in")
    page.goto(f"{base_url}/admin/campaigns/spring")
    expect(page.locator("h1")).to_have_text("Sign in")


def test_a_brand_is_kept_out_of_another_brands_pages(context: BrowserContext, office: Served) -> None:
    base_url = office.base_url
    page = context.new_page()
    log_in_with_the_keyboard(page, base_url, GLOBEX)
    expect(page.locator("table.campaigns a")).to_have_text(["rival"])
    for path in ("/admin/campaigns/spring", "/admin/campaigns/spring/diff?from=1&to=2", "/admin/tokens"):
        answer = page.goto(base_url + path)
        assert answer is not None and answer.status == 404, path
        expect(page.locator("h1")).to_have_text("Not found")


def test_a_form_with_a_stale_token_changes_nothing(context: BrowserContext, office: Served) -> None:
    base_url = office.base_url
    page = context.new_page()
    log_in_with_the_keyboard(page, base_url, ACME)
    page.goto(f"{base_url}/admin/campaigns/autumn")
    page.locator("form.editor input[name=csrf]").evaluate("input => { input.value = 'stale'; }")
    page.get_by_label("Campaign JSON").fill(json.dumps(campaign_json(id="autumn", locale="en")))
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Save").click()
    assert posted.value.status == 403
    expect(page.locator("h1")).to_have_text("Forbidden")
    assert _stored(office, "autumn")["locale"] == "fr"


def test_pages_work_without_javascript_and_in_french(browser: Browser, office: Served) -> None:
    base_url = office.base_url
    context = browser.new_context(locale="fr-FR", java_script_enabled=False)
    context.set_default_timeout(20_000)
    try:
        page = context.new_page()
        page.goto(f"{base_url}/admin/login")
        expect(page.locator("h1")).to_have_text("Se connecter")
        page.get_by_label("E-mail").fill(ACME)
        page.get_by_label("Mot de passe").fill(PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        expect(page.locator("h1")).to_have_text("Tableau de bord")
        page.get_by_role("link", name="autumn").click()
        # Without JavaScript the Format button stays hidden; saving is a plain form post.
        expect(page.get_by_role("button", name="Mettre en forme")).to_be_hidden()
        page.get_by_label("JSON de la campagne").fill(json.dumps(campaign_json(id="autumn", locale="it")))
        page.get_by_role("button", name="Enregistrer").click()
        expect(page.get_by_role("status")).to_contain_text("enregistrée")
        assert _stored(office, "autumn")["locale"] == "it"
        page.get_by_role("link", name="English").click()
        expect(page.locator("h1")).to_have_text("Edit campaign autumn")
    finally:
        context.close()
