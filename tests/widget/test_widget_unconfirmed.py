"""Offers a retailer's feed has not confirmed for too long, as a shopper sees them in Chromium: with a note."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from playwright.sync_api import BrowserContext, expect
from widget_site import GTIN, Site, run_async

from cache.index import build_index
from cache.ingest import ingest_files
from cache.keys import Keys
from cache.unconfirmed import apply_unconfirmed
from edge_api.settings import Settings

DIALOG = "nearcart-widget [role=dialog]"
NOTE = "stock non confirmé"


async def _confirm_bastille_and_check(settings: Settings, feeds: Path) -> None:
    """The catalog's offers date from 2025: Hyper Bastille's feed confirms its offer now, then a quality check runs."""
    redis = aioredis.Redis.from_url(settings.redis_url)
    conn = await asyncpg.connect(settings.database_url)
    keys = Keys(settings.redis_prefix)
    try:
        feed = feeds / "confirm.csv"
        feed.write_text("retailer_id,store_id,gtin,price,currency,quantity,modes,updated_at\n"
                        f"hyper,bastille,{GTIN},2.99,EUR,2,in_store|click_collect,{datetime.now(UTC).isoformat()}\n")
        await ingest_files(conn, redis, keys, "offers", [feed])
        await apply_unconfirmed(conn, redis, keys, settings.unconfirmed_after_s)
    finally:
        await conn.close()
        await redis.aclose()


async def _forget_the_check(settings: Settings) -> None:
    """Back to plain offers for the session's other tests: no verdicts, a fresh index."""
    redis = aioredis.Redis.from_url(settings.redis_url)
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute("DELETE FROM offers_unconfirmed")
        await build_index(conn, redis, Keys(settings.redis_prefix), grace_s=settings.index_grace_s)
    finally:
        await conn.close()
        await redis.aclose()


@pytest.fixture(scope="module")
def checked(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    run_async(_confirm_bastille_and_check(site.settings, tmp_path_factory.mktemp("confirm")))
    yield
    run_async(_forget_the_check(site.settings))


def test_an_offer_not_confirmed_for_too_long_shows_a_note_and_a_confirmed_one_none(
    context: BrowserContext, site: Site, checked: None
) -> None:
    page = context.new_page()
    page.goto(f"{site.brand}/basic.html")
    page.locator("[data-nearcart-gtin]").first.click()
    in_store = page.locator(f"{DIALOG} section[data-mode=in_store] a")
    expect(in_store).to_have_count(2)
    # The server's order stays: Italie (unconfirmed) is nearer the shopper than Bastille (confirmed).
    expect(in_store.first).to_contain_text("Hyper Italie")
    expect(in_store.first.locator(".unc")).to_have_text(NOTE)
    expect(in_store.first.locator(".unc")).to_be_visible()
    expect(in_store.nth(1)).to_contain_text("Hyper Bastille")
    expect(in_store.nth(1).locator(".unc")).to_have_count(0)
    expect(page.locator(f"{DIALOG} section[data-mode=click_collect] a")).to_contain_text("Hyper Bastille")
    expect(page.locator(f"{DIALOG} section[data-mode=click_collect] .unc")).to_have_count(0)
    expect(page.locator(f"{DIALOG} section[data-mode=delivery] .unc")).to_have_text(NOTE)
