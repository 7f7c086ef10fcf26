"""An app per test on the run's database and a fresh Redis prefix, with people and campaigns loaded; Chromium
for the browser tests, started after the module's server (`server_started`, which each browser module defines).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from office_site import load_people_and_campaigns
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright
from starlette.testclient import TestClient

from edge_api.app import create_app
from edge_api.settings import Settings


@pytest.fixture
async def people(db: asyncpg.Connection) -> None:
    await load_people_and_campaigns(db)


@pytest.fixture
def client(settings: Settings, people: None) -> Iterator[TestClient]:
    """A browser on loopback (plain http: the session cookie is not Secure there)."""
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        yield client


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


# Module scope: sync Playwright keeps an event loop running in this thread, which later modules' asyncio.run
# (the root conftest's fixtures) would trip over.
@pytest.fixture(scope="module")
def playwright(server_started: Any) -> Iterator[Playwright]:
    # After the module's server: its setup and teardown run asyncio loops of their own, outside Playwright's.
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(locale="en-GB")
    # 2-core shared machines are slow: be generous, never sleep.
    context.set_default_timeout(20_000)
    yield context
    context.close()
