"""The README's picture of the back office's dashboard: the demo catalog, 90 days of generated figures, Chromium.

    python -m loadtest.screenshot_dashboard [--out docs/backoffice-dashboard.png] [--lang en] [--days 90]

Scratch services and database (`loadtest.stack`), the demo catalog and campaign, figures
generated for the campaign's products, the demo retailers and a few départements (weekly
rhythm, slow growth, seeded: the same picture every run), written the way the aggregator
writes them (`add_figures`, roll-ups included), then `nearcart serve` and Debian's Chromium
logged in as the demo brand. Prints where the picture went.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
from playwright.sync_api import expect, sync_playwright

from backoffice.aggregator import METRICS, FactKey, Figures, add_figures
from backoffice.passwords import hash_password
from cache.gtin import normalize_gtin
from loadtest.stack import demo_settings, serve_nearcart

EMAIL, PASSWORD = "mia@nearcart-demo.example", "screenshot-only-password"
REGIONS = {"FR-75": 9, "FR-92": 5, "FR-93": 4, "FR-94": 4, "FR-69": 6, "FR-13": 5, "FR-33": 3, "FR-59": 3, "BE": 2}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def _figures(**named: int) -> Figures:
    return [named.get(name, 0) for name in METRICS]


async def generate(database_url: str, days: int, seed: int = 7) -> int:
    """Figures of `days` days up to today for the demo campaign; returns how many daily rows."""
    rng = random.Random(seed)
    conn = await asyncpg.connect(database_url)
    try:
        campaign = await conn.fetchval("SELECT body FROM campaigns WHERE id = 'demo'")
        gtins = [normalize_gtin(p["gtin"]) for p in json.loads(campaign)["products"]]
        offers = await conn.fetch(
            "SELECT DISTINCT ON (gtin, retailer_id) gtin, retailer_id, price, modes FROM offers"
            " WHERE gtin = ANY($1) AND quantity > 0 ORDER BY gtin, retailer_id, store_id DESC", gtins)
        by_product: dict[str, list[tuple[str, str, int]]] = {}
        for row in offers:
            mode = "delivery" if row["modes"] & 4 else ("click_collect" if row["modes"] & 2 else "in_store")
            by_product.setdefault(row["gtin"], []).append((row["retailer_id"], mode, int(row["price"] * Decimal(100))))
        facts: dict[FactKey, Figures] = {}
        today = datetime.now(UTC).date()
        for back in range(days):
            day = today - timedelta(days=back)
            rhythm = (1.35 if day.weekday() >= 5 else 1.0) * (1 - back / (days * 2.5))
            for popularity, gtin in enumerate(gtins):
                weight = rhythm * 1.8 / (1 + popularity * 0.35)
                for region, size in REGIONS.items():
                    loads = int(rng.gauss(18, 4) * size * weight)
                    opens = int(loads * rng.uniform(0.09, 0.16))
                    searches = int(opens * rng.uniform(1.0, 1.3))
                    found = int(searches * rng.uniform(0.8, 0.95))
                    if loads <= 0:
                        continue
                    facts[(day, "demo", gtin, "", "", region, "")] = _figures(
                        loads=loads, opens=opens, searches=searches, searches_with_offers=found)
                    for retailer, mode, cents in rng.sample(by_product.get(gtin, []),
                                                            min(3, len(by_product.get(gtin, [])))):
                        shown = int(found * rng.uniform(0.8, 2.2))
                        clicks = int(shown * rng.uniform(0.06, 0.16))
                        facts[(day, "demo", gtin, retailer, mode, region, "EUR")] = _figures(
                            offers_shown=shown, clicks=clicks, intent_cents=clicks * cents)
        async with conn.transaction():
            await add_figures(conn, facts)
        await conn.execute("INSERT INTO users (email, role, password_hash) VALUES ($1, 'brand:nearcart-demo', $2)"
                           " ON CONFLICT (email) DO NOTHING", EMAIL, hash_password(PASSWORD))
        return len(facts)
    finally:
        await conn.close()


def shoot(base_url: str, out: Path, lang: str, days: int) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="fr-FR" if lang == "fr" else "en-GB",
                                          viewport={"width": 1280, "height": 1360}, device_scale_factor=1)
            page = context.new_page()
            page.goto(f"{base_url}/admin/login?lang={lang}")
            page.locator("#email").fill(EMAIL)
            page.locator("#password").fill(PASSWORD)
            page.locator("#password").press("Enter")
            page.wait_for_url(f"{base_url}/admin/")
            # The whole generated period, as a brand would bookmark it.
            since = datetime.now(UTC).date() - timedelta(days=days - 1)
            page.locator("#f-from").fill(since.isoformat())
            page.get_by_role("button", name="Show" if lang == "en" else "Afficher").click()
            page.wait_for_url(f"{base_url}/admin/?*")
            expect(page.locator("#daily-chart canvas")).to_be_visible()
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out))
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/backoffice-dashboard.png"))
    parser.add_argument("--lang", choices=("en", "fr"), default="en")
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    with demo_settings(aggregate_events=False) as settings:
        rows = asyncio.run(generate(settings.database_url, args.days))
        with serve_nearcart(settings) as base_url:
            shoot(base_url, args.out, args.lang, args.days)
    print(f"{args.out}: the dashboard over {args.days} days ({rows} daily rows generated)")


if __name__ == "__main__":
    main()
