"""What the back-office tests share: the people, their campaigns, how a browser-less client logs in, and how
the dashboard's figures are read off the page and compared with its CSV export.

The campaigns are those of the admin API's tests (`campaign_json`): spring and autumn of acme, rival of globex.
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import re
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import asyncpg
import jwt
import msgspec
from starlette.testclient import TestClient

from backoffice.passwords import hash_password
from cache import db as catalog_db
from edge_api.campaign_store import store_campaign
from edge_api.schemas import Campaign
from edge_api.settings import Settings
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


async def load_people_and_campaigns(conn: asyncpg.Connection, more_people: Mapping[str, str] | None = None) -> None:
    """`PEOPLE` and `more_people` (email: role), all with `PASSWORD`, and their campaigns."""
    await conn.execute("TRUNCATE users, api_tokens")
    await conn.executemany(
        "INSERT INTO users (email, role, password_hash) VALUES ($1, $2, $3)",
        [(email, role, PASSWORD_HASH) for email, role in {**PEOPLE, **(more_people or {})}.items()],
    )
    for campaign in (campaign_json(), campaign_json(id="autumn"), campaign_json(id="rival", brand="globex")):
        await store_campaign(conn, msgspec.convert(campaign, Campaign), 5.0)


def prepare_site(database_url: str, migrate: bool = False, more_people: Mapping[str, str] | None = None) -> None:
    """A browser module's database before its `nearcart serve` starts: migrated if asked, the people loaded.

    Called from a module fixture, outside any running loop (Playwright's starts after the server).
    """

    async def prepare() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            if migrate:
                await catalog_db.migrate(conn)
            await load_people_and_campaigns(conn, more_people)
        finally:
            await conn.close()

    asyncio.run(prepare())


@dataclass(frozen=True)
class Served:
    """A browser module's own `nearcart serve`: where it listens and the settings it runs on."""

    base_url: str
    settings: Settings

    def admin_json(self, path: str) -> dict[str, Any]:
        """What the admin JSON API answers an admin JWT now: the test's own eyes, not the browser's."""
        claims = {"sub": "browser-test", "role": "admin", "exp": int(time.time()) + 3600}
        token = jwt.encode(claims, self.settings.effective_jwt_secret, algorithm="HS256")
        request = urllib.request.Request(self.base_url + path, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            found: dict[str, Any] = json.load(answer)
        return found


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


class Screen(HTMLParser):
    """What a reader sees of the figures: the totals' cards and every table's rows, cell by cell."""

    def __init__(self) -> None:
        super().__init__()
        self.totals: dict[str, str] = {}
        self.tables: dict[str, dict[str, dict[str, str]]] = {}
        self._table = self._key = self._figure = ""
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and found.get("data-table"):
            self._table = found["data-table"] or ""
            self.tables[self._table] = {}
        elif tag == "tr" and self._table and found.get("data-key") is not None:
            self._key = found["data-key"] or ""
            self.tables[self._table][self._key] = {}
        elif found.get("data-figure") and tag in ("td", "div"):
            self._figure, self._text = found["data-figure"] or "", []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = ""
        elif self._figure and tag in ("td", "div"):
            text = "".join(self._text).strip()
            if self._table:
                self.tables[self._table][self._key][self._figure] = text
            else:
                self.totals[self._figure] = text.split("\n")[-1].strip()  # the card's <dd> after its <dt>
            self._figure = ""

    def handle_data(self, data: str) -> None:
        if self._figure:
            self._text.append(data if self._table else data + "\n")


def screen_of(page: str) -> Screen:
    screen = Screen()
    screen.feed(page)
    return screen


def number(shown: str) -> str:
    """A figure as the CSV writes it: 1,234 -> 1234, 12.50% -> 0.1250, 4.49 EUR -> 4.49, — -> empty."""
    text = shown.replace(",", "").replace("\u00a0", " ").strip()
    if text == "—":
        return ""
    if text.endswith("%"):
        return f"{float(text[:-1]) / 100:.4f}"
    return text.split(" ")[0]


def csv_rows(text: str) -> dict[tuple[str, str], dict[str, str]]:
    return {(row["table"], row["key"]): row for row in csv.DictReader(io.StringIO(text))}


def assert_csv_is_the_screen(page: str, export: str) -> None:
    screen, rows = screen_of(page), csv_rows(export)
    shown = {(table, key) for table, keyed in screen.tables.items() for key in keyed}
    assert shown | {("total", "")} == set(rows), "the CSV and the page list different rows"
    on_screen = [(("total", ""), screen.totals)] + [
        ((table, key), cells) for table, keyed in screen.tables.items() for key, cells in keyed.items()]
    for where, cells in on_screen:
        assert cells, where
        for field, text in cells.items():
            column = "intent_value_EUR" if field == "intent_value" else field
            written = rows[where].get(column, "0.00")
            assert number(text) == written, (where, field, text, written)
