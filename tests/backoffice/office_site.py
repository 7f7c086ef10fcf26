"""What the back-office tests share: the people, their campaigns, and how a browser-less client logs in.

The campaigns are those of the admin API's tests (`campaign_json`): spring and autumn of acme, rival of globex.
"""

from __future__ import annotations

import html
import re
from typing import Any

import asyncpg
import msgspec
from starlette.testclient import TestClient

from backoffice.passwords import hash_password
from edge_api.campaign_store import store_campaign
from edge_api.schemas import Campaign
from tests.edge_api.test_admin import campaign_json

PASSWORD = "correct horse battery"
ADMIN = "admin@example.com"
ACME = "ada@acme.example"
GLOBEX = "gus@globex.example"
SHOP = "rita@shop.example"
PEOPLE = {ADMIN: "admin", ACME: "brand:acme", GLOBEX: "brand:globex", SHOP: "retailer:shop"}
# Hashed once per run: argon2id costs about 0.1 s per hash on purpose (`add_user` is tested on its own).
PASSWORD_HASH = hash_password(PASSWORD)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def load_people_and_campaigns(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE users, api_tokens")
    await conn.executemany(
        "INSERT INTO users (email, role, password_hash) VALUES ($1, $2, $3)",
        [(email, role, PASSWORD_HASH) for email, role in PEOPLE.items()],
    )
    for campaign in (campaign_json(), campaign_json(id="autumn"), campaign_json(id="rival", brand="globex")):
        await store_campaign(conn, msgspec.convert(campaign, Campaign), 5.0)


def csrf_of(page: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(page)
    assert match is not None, "no CSRF field on the page"
    return html.unescape(match.group(1))


def log_in(client: TestClient, email: str, password: str = PASSWORD, **form: str) -> Any:
    """Fill and post the login form as a browser would (its CSRF token and cookie included)."""
    page = client.get("/admin/login")
    return client.post(
        "/admin/login",
        data={"csrf": csrf_of(page.text), "email": email, "password": password, **form},
        follow_redirects=False,
    )


def logged_in(client: TestClient, email: str) -> str:
    """Log in and return the session's CSRF token (from the dashboard's logout form)."""
    answer = log_in(client, email)
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/admin/").text)
