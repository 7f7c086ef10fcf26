"""A retailer joins by itself: an admin's one-time link, its password, its profile, its basket-link template checked."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from office_site import ACME, ADMIN, SHOP, csrf_of, logged_in
from starlette.testclient import TestClient

from backoffice.keys import digest

NEW_PASSWORD = "a long enough password"
_LINK = re.compile(r'<textarea id="invite-link" readonly rows="2">([^<]+)</textarea>')


@pytest.fixture
async def clean(db: asyncpg.Connection) -> None:
    await db.execute("TRUNCATE retailer_invites, retailer_template_changes")


def invite(client: TestClient, retailer_id: str = "newshop", email: str = "nina@newshop.example") -> str:
    """The join path of a fresh invitation made by the admin (logged in on `client`)."""
    csrf = logged_in(client, ADMIN)
    answer = client.post("/admin/retailers/invite", data={"csrf": csrf, "retailer_id": retailer_id, "email": email})
    assert answer.status_code == 200, answer.text
    match = _LINK.search(answer.text)
    assert match is not None
    assert match.group(1).startswith("http://127.0.0.1/admin/join/")
    return match.group(1).removeprefix("http://127.0.0.1")


def join(client: TestClient, path: str, password: str = NEW_PASSWORD, again: str | None = None) -> Any:
    form = client.get(path)
    assert form.status_code == 200, form.text
    return client.post(path, data={"csrf": csrf_of(form.text), "password": password,
                                   "password_again": password if again is None else again}, follow_redirects=False)


async def test_an_invited_retailer_joins_once_and_lands_on_its_page(
    client: TestClient, clean: None, db: asyncpg.Connection
) -> None:
    path = invite(client)
    client.cookies.clear()
    answer = join(client, path)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/retailers/newshop?welcome=1"
    page = client.get(answer.headers["location"])
    assert "Retailer newshop" in page.text and "Welcome!" in page.text
    assert await db.fetchval("SELECT role FROM users WHERE email = 'nina@newshop.example'") == "retailer:newshop"
    # The link is spent: the same page again, in another browser, gets the "not valid" page.
    client.cookies.clear()
    again = client.get(path)
    assert again.status_code == 410 and "expired or was already used" in again.text
    # The database keeps only the token's hash.
    token = path.rsplit("/", 1)[1]
    assert await db.fetchval("SELECT count(*) FROM retailer_invites WHERE token_hash = $1", digest(token)) == 1
    assert await db.fetchval("SELECT count(*) FROM retailer_invites WHERE token_hash = $1", token) == 0


async def test_an_expired_invitation_opens_nothing(client: TestClient, clean: None, db: asyncpg.Connection) -> None:
    path = invite(client)
    form = client.get(path)
    await db.execute("UPDATE retailer_invites SET expires_at = now() - $1::interval", timedelta(seconds=1))
    client.cookies.clear()
    assert client.get(path).status_code == 410
    late = client.post(path, data={"csrf": csrf_of(form.text), "password": NEW_PASSWORD,
                                   "password_again": NEW_PASSWORD})
    assert late.status_code == 410
    assert await db.fetchval("SELECT count(*) FROM users WHERE email = 'nina@newshop.example'") == 0


async def test_a_made_up_link_gets_the_same_page_as_a_spent_one(client: TestClient, clean: None) -> None:
    for token in ("x" * 43, "short", "y" * 500):
        answer = client.get(f"/admin/join/{token}")
        assert answer.status_code == 410 and "expired or was already used" in answer.text


async def test_join_refuses_a_weak_or_mistyped_password_and_a_forged_form(
    client: TestClient, clean: None, db: asyncpg.Connection
) -> None:
    path = invite(client)
    client.cookies.clear()
    assert join(client, path, password="short").status_code == 422
    assert join(client, path, again=NEW_PASSWORD + "!").status_code == 422
    forged = client.post(path, data={"csrf": "0" * 64, "password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert forged.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM users WHERE email = 'nina@newshop.example'") == 0
    # Nothing was spent: the right form still works.
    assert join(client, path).status_code == 303


async def test_only_an_admin_invites_and_bad_invitations_are_named(client: TestClient, clean: None) -> None:
    for email in (ACME, SHOP):
        client.cookies.clear()
        csrf = logged_in(client, email)
        assert client.get("/admin/retailers/invite").status_code == 404
        posted = client.post("/admin/retailers/invite", data={"csrf": csrf, "retailer_id": "x", "email": "x@y.example"})
        assert posted.status_code == 404
    client.cookies.clear()
    csrf = logged_in(client, ADMIN)
    for retailer_id, email, problem in (
        ("bad id!", "a@b.example", "retailer id"),
        ("fine", "not an email", "is not an email address"),
        ("fine", SHOP, "already has an account"),
    ):
        answer = client.post("/admin/retailers/invite", data={"csrf": csrf, "retailer_id": retailer_id, "email": email})
        assert answer.status_code == 422 and problem in answer.text, (retailer_id, email)


def _profile(client: TestClient, retailer_id: str, **fields: str) -> Any:
    page = client.get(f"/admin/retailers/{retailer_id}")
    data = {"csrf": csrf_of(page.text), "name": "New Shop", "logo_url": "https://newshop.example/logo.png",
            "cart_url_template": "https://newshop.example/cart?ean={gtin}&store={store_id}&qty={qty}",
            "delivery_countries": "FR|BE", "action": "save", **fields}
    return client.post(f"/admin/retailers/{retailer_id}", data=data, follow_redirects=False)


async def test_the_template_is_checked_shown_as_a_link_then_saved_and_its_changes_recorded(
    client: TestClient, clean: None, db: asyncpg.Connection
) -> None:
    path = invite(client)
    client.cookies.clear()
    join(client, path)
    bad = _profile(client, "newshop", cart_url_template="http://newshop.example/cart?ean={gtin}")
    assert bad.status_code == 422 and "is not an https URL" in bad.text
    unknown = _profile(client, "newshop", cart_url_template="https://newshop.example/cart?ean={ean}")
    assert unknown.status_code == 422 and "unknown placeholder {ean}" in unknown.text
    # A new template is not saved unseen: the answer shows its link for a sample product.
    shown = _profile(client, "newshop")
    assert shown.status_code == 200
    assert ('href="https://newshop.example/cart?ean=03017620422003&amp;store=STORE-1&amp;qty=1"'
            in shown.text)
    assert "sample product" in shown.text
    assert await db.fetchval("SELECT count(*) FROM retailers WHERE retailer_id = 'newshop'") == 0
    confirmed = _profile(client, "newshop",
                         confirmed_template="https://newshop.example/cart?ean={gtin}&store={store_id}&qty={qty}")
    assert confirmed.status_code == 303
    row = await db.fetchrow("SELECT name, logo_url, delivery_countries FROM retailers WHERE retailer_id = 'newshop'")
    assert dict(row) == {"name": "New Shop", "logo_url": "https://newshop.example/logo.png",
                         "delivery_countries": ["FR", "BE"]}
    # With an offer in stock, the check link is built for it.
    await db.execute("INSERT INTO stores (retailer_id, store_id, name, country, lat, lon)"
                     " VALUES ('newshop', 'lyon-2', 'Lyon', 'FR', 45.75, 4.83)")
    await db.execute("INSERT INTO offers (retailer_id, store_id, gtin, price, currency, quantity, modes, updated_at)"
                     " VALUES ('newshop', 'lyon-2', '00000000000017', 1.5, 'EUR', 3, 1, now())")
    changed = "https://newshop.example/basket/{gtin}?s={store_id}"
    shown = _profile(client, "newshop", cart_url_template=changed)
    assert 'href="https://newshop.example/basket/00000000000017?s=lyon-2"' in shown.text
    # A confirmation of another template than the one posted saves nothing.
    stale = _profile(client, "newshop", cart_url_template=changed, confirmed_template="https://newshop.example/{gtin}")
    assert stale.status_code == 200
    assert _profile(client, "newshop", cart_url_template=changed,
                    confirmed_template=changed).status_code == 303
    # A name change alone needs no check.
    assert _profile(client, "newshop", name="New Shop Lyon", cart_url_template=changed).status_code == 303
    history = await db.fetch("SELECT changed_by, old_template, new_template FROM retailer_template_changes"
                             " WHERE retailer_id = 'newshop' ORDER BY id")
    assert [tuple(r) for r in history] == [
        ("nina@newshop.example", None, "https://newshop.example/cart?ean={gtin}&store={store_id}&qty={qty}"),
        ("nina@newshop.example", "https://newshop.example/cart?ean={gtin}&store={store_id}&qty={qty}", changed),
    ]
    page = client.get("/admin/retailers/newshop").text
    assert page.count("nina@newshop.example</td>") == 2
    assert "<code>https://newshop.example/basket/{gtin}?s={store_id}</code>" in page


async def test_a_retailer_sees_only_its_own_page(client: TestClient, clean: None, db: asyncpg.Connection) -> None:
    await db.execute("INSERT INTO retailers (retailer_id, name, cart_url_template) VALUES"
                     " ('shop', 'Shop', 'https://shop.example/{gtin}'), ('mart', 'Mart', 'https://mart.example/{gtin}')")
    csrf = logged_in(client, SHOP)
    assert client.get("/admin/retailers", follow_redirects=False).headers["location"] == "/admin/retailers/shop"
    assert client.get("/admin/retailers/shop").status_code == 200
    assert client.get("/admin/retailers/mart").status_code == 404
    assert client.get("/admin/retailers/nosuch").status_code == 404
    posted = client.post("/admin/retailers/mart", data={"csrf": csrf, "name": "Mine now", "action": "save",
                                                         "cart_url_template": "https://mart.example/{gtin}"})
    assert posted.status_code == 404
    assert await db.fetchval("SELECT name FROM retailers WHERE retailer_id = 'mart'") == "Mart"
    client.cookies.clear()
    logged_in(client, ADMIN)
    listing = client.get("/admin/retailers").text
    assert 'href="/admin/retailers/mart"' in listing and 'href="/admin/retailers/shop"' in listing
    assert client.get("/admin/retailers/mart").status_code == 200
