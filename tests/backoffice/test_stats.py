"""`stats_view` gives the figures the counted events make, whichever way it reads them (roll-ups or daily rows)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import date, timedelta

import asyncpg
import pytest

from backoffice.aggregator import METRICS, FactKey, Figures, add_figures
from backoffice.stats import KeyFigures, StatsFilters, StatsView, stats_view, to_csv
from cache import db as catalog_db
from edge_api.settings import Settings

START = date(2025, 10, 20)
GTINS = ["03017620422003", "00000000000017", "05000112637922"]


def random_facts(seed: int) -> dict[FactKey, Figures]:
    """About 120 days across five months: loads, opens and searches without retailer; the rest with one."""
    rng = random.Random(seed)
    facts: dict[FactKey, Figures] = {}
    for _ in range(1500):
        day = START + timedelta(days=rng.randrange(120))
        campaign, gtin, region = rng.choice(["spring", "autumn", "rival"]), rng.choice(GTINS), rng.choice(
            ["FR-75", "FR-2A", "BE", ""])
        if rng.random() < 0.5:
            key: FactKey = (day, campaign, gtin, "", "", region, "")
            searches = rng.randrange(5)
            figures = [rng.randrange(9), rng.randrange(5), searches, rng.randrange(searches + 1), 0, 0, 0]
        else:
            retailer, mode = rng.choice(["shop", "mart"]), rng.choice(["in_store", "delivery"])
            clicks = rng.randrange(4)
            currency = rng.choice(["EUR", "GBP"]) if clicks else ""
            key = (day, campaign, gtin, retailer, mode, region, currency)
            figures = [0, 0, 0, 0, rng.randrange(1, 6) if not clicks else 0, clicks, clicks * rng.randrange(100, 900)]
        total = facts.setdefault(key, [0] * len(METRICS))
        for i, n in enumerate(figures):
            total[i] += n
    return facts


@pytest.fixture
def facts() -> dict[FactKey, Figures]:
    return random_facts(7)


@pytest.fixture
async def pool(
    settings: Settings, db: asyncpg.Connection, facts: dict[FactKey, Figures]
) -> AsyncIterator[asyncpg.Pool]:
    pool = await catalog_db.create_pool(settings.database_url)
    async with pool.acquire() as conn, conn.transaction():
        # In three slices, as aggregator batches would: roll-up rows are added to, not only inserted.
        items = list(facts.items())
        for part in (items[::3], items[1::3], items[2::3]):
            await add_figures(conn, dict(part))
    yield pool
    await pool.close()


def naive(facts: dict[FactKey, Figures], f: StatsFilters, position: int) -> dict[str, tuple[int, ...]]:
    """Clicks, opens and cents per key of one dimension (position in FactKey), straight from the facts."""
    found: dict[str, list[int]] = {}
    for key, figures in facts.items():
        day, campaign, gtin, retailer, mode, region, _ = key
        if not (f.since <= day <= f.to) or (f.campaigns is not None and campaign not in f.campaigns):
            continue
        if any(want is not None and have != want
               for want, have in ((f.gtin, gtin), (f.retailer, retailer), (f.mode, mode), (f.region, region))):
            continue
        name = str(key[position])
        if position in (3, 4) and not name:
            continue
        total = found.setdefault(name, [0, 0, 0])
        total[0] += figures[METRICS.index("clicks")]
        total[1] += figures[METRICS.index("opens")]
        total[2] += figures[METRICS.index("intent_cents")]
    return {name: tuple(v) for name, v in found.items() if any(v) or position in (2, 5)}


def shown(table: list[KeyFigures]) -> dict[str, tuple[int, ...]]:
    def cents(row: KeyFigures) -> int:
        return sum(int(amount.replace(".", "")) for amount in row.intent_value.values())

    return {row.key: (row.clicks, row.opens, cents(row)) for row in table if row.clicks or row.opens or cents(row)}


def check(view: StatsView, facts: dict[FactKey, Figures], f: StatsFilters) -> None:
    def nonzero(found: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
        return {k: v for k, v in found.items() if any(v)}

    assert shown(view.by_product) == nonzero(naive(facts, f, 2))
    assert shown(view.by_retailer) == nonzero(naive(facts, f, 3))
    assert shown(view.by_mode) == nonzero(naive(facts, f, 4))
    assert shown(view.by_region) == nonzero(naive(facts, f, 5))
    every = naive(facts, f, 1)  # by campaign: the totals
    assert (view.totals.clicks, view.totals.opens) == (sum(v[0] for v in every.values()),
                                                       sum(v[1] for v in every.values()))
    assert sum(day.opens for day in view.daily) == view.totals.opens
    assert len(view.daily) == (f.to - f.since).days + 1


@pytest.mark.parametrize(("since", "to"), [
    (date(2025, 10, 20), date(2026, 2, 16)),  # partial first and last months, whole ones between
    (date(2025, 11, 1), date(2025, 12, 31)),  # whole months only
    (date(2025, 11, 5), date(2025, 11, 20)),  # inside one month
    (date(2025, 12, 1), date(2026, 1, 10)),  # a whole month then days
])
async def test_unfiltered_view_from_roll_ups_matches_the_events(
    pool: asyncpg.Pool, facts: dict[FactKey, Figures], since: date, to: date
) -> None:
    for campaigns in (None, ("spring", "autumn"), ()):
        f = StatsFilters(since=since, to=to, campaigns=campaigns)
        check(await stats_view(pool, f), facts, f)


@pytest.mark.parametrize("narrowing", [
    {"region": "FR-2A"}, {"retailer": "shop"}, {"mode": "delivery"}, {"gtin": "00000000000017", "region": "BE"},
])
async def test_filtered_view_matches_the_events(
    pool: asyncpg.Pool, facts: dict[FactKey, Figures], narrowing: dict[str, str]
) -> None:
    f = StatsFilters(since=date(2025, 10, 25), to=date(2026, 1, 31), campaigns=("spring", "rival"), **narrowing)
    check(await stats_view(pool, f), facts, f)


async def test_figures_are_named_as_brands_know_them(pool: asyncpg.Pool) -> None:
    view = await stats_view(pool, StatsFilters(since=START, to=START + timedelta(days=119)))
    t = view.totals
    assert t.searches_without_offers == t.searches - t.searches_with_offers >= 0
    assert t.click_through_rate == round(t.clicks / t.opens, 4)
    assert set(t.intent_value) == {"EUR", "GBP"}
    csv_total = to_csv(view).splitlines()[1].split(",")
    assert csv_total[:9] == ["total", "", str(t.loads), str(t.opens), str(t.searches), str(t.searches_with_offers),
                             str(t.searches_without_offers), str(t.offers_shown), str(t.clicks)]
    assert csv_total[10:] == [t.intent_value["EUR"], t.intent_value["GBP"]]


async def test_rebuilt_roll_ups_equal_those_the_aggregator_kept(pool: asyncpg.Pool, db: asyncpg.Connection) -> None:
    query = "SELECT * FROM stats_rollup ORDER BY grain, dim, campaign, period, value, currency"
    kept = [tuple(row) for row in await db.fetch(query)]
    await db.execute("SELECT stats_rebuild_rollups()")
    assert [tuple(row) for row in await db.fetch(query)] == kept


def test_the_last_13_months_read_monthly_rows_and_a_few_days() -> None:
    from backoffice.stats import _plan

    today = date(2026, 12, 3)
    assert _plan(date(2025, 11, 3), today, today) == [
        ("m", date(2025, 11, 1), date(2026, 12, 31), 1),
        ("d", date(2025, 11, 1), date(2025, 11, 2), -1),  # the two days before the period
        ("d", date(2026, 12, 4), date(2026, 12, 4), -1),  # tomorrow, in case a clock runs ahead
    ]
    assert _plan(date(2026, 3, 10), date(2026, 3, 12), today) == [("d", date(2026, 3, 10), date(2026, 3, 12), 1)]
