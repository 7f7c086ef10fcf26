"""`stats_view` gives the figures the counted events make, whichever way it reads them (roll-ups or daily rows)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import pytest

from backoffice.aggregator import METRICS, FactKey, Figures, add_figures
from backoffice.stats import COUNTS, KeyFigures, StatsFilters, StatsView, stats_view, to_csv
from backoffice.stats import Figures as ShownFigures
from backoffice.stats_scope import StatsQuery, scoped_filters
from cache import db as catalog_db
from edge_api.auth import Principal
from edge_api.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
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
    queries = ["SELECT * FROM stats_rollup ORDER BY grain, dim, campaign, period, value, currency",
               "SELECT * FROM stats_rollup_within ORDER BY scope, scope_value, grain, dim, campaign, period, value,"
               " currency"]
    kept = [[tuple(row) for row in await db.fetch(query)] for query in queries]
    assert kept[1], "the aggregator kept no roll-ups within a retailer or region"
    await db.execute("SELECT stats_rebuild_rollups()")
    assert [[tuple(row) for row in await db.fetch(query)] for query in queries] == kept


# Every figure of a key: the six counts and the purchase-intent value in cents per currency.
Every = tuple[tuple[int, ...], dict[str, int]]


def every_figure(figures: ShownFigures) -> Every:
    counts = tuple(getattr(figures, name) for name in COUNTS)
    return counts, {cur: int(amount.replace(".", "")) for cur, amount in figures.intent_value.items()}


async def from_daily_rows(db: asyncpg.Connection, f: StatsFilters, column: str) -> dict[str, Every]:
    """Figures per key of `column` (an SQL expression), summed straight from stats_daily."""
    rows = await db.fetch(
        f"SELECT ({column})::text AS key, currency, {', '.join(f'sum({m})::bigint AS {m}' for m in METRICS)}"
        " FROM stats_daily WHERE day BETWEEN $1 AND $2 AND ($3::text[] IS NULL OR campaign = ANY($3))"
        " AND ($4::text IS NULL OR gtin = $4) AND ($5::text IS NULL OR retailer_id = $5)"
        " AND ($6::text IS NULL OR mode = $6) AND ($7::text IS NULL OR region = $7) GROUP BY 1, 2",
        f.since, f.to, None if f.campaigns is None else list(f.campaigns), f.gtin, f.retailer, f.mode, f.region,
    )
    found: dict[str, tuple[list[int], dict[str, int]]] = {}
    for row in rows:
        if row["key"] == "" and column in ("retailer_id", "mode"):
            continue  # loads, opens and searches: no retailer or mode to list them under
        counts, cents = found.setdefault(row["key"].strip(), ([0] * len(COUNTS), {}))
        for i, name in enumerate(COUNTS):
            counts[i] += row[name]
        if row["currency"] and row["intent_cents"]:
            cents[row["currency"]] = cents.get(row["currency"], 0) + row["intent_cents"]
    return {key: (tuple(counts), cents) for key, (counts, cents) in found.items() if any(counts) or cents}


async def assert_view_equals_daily_rows(pool: asyncpg.Pool, db: asyncpg.Connection, f: StatsFilters) -> None:
    view = await stats_view(pool, f)
    for column, table in (("gtin", view.by_product), ("retailer_id", view.by_retailer), ("mode", view.by_mode),
                          ("region", view.by_region)):
        assert {row.key: every_figure(row) for row in table} == await from_daily_rows(db, f, column), (column, f)
    days = {day.day.isoformat(): every_figure(day) for day in view.daily if any(every_figure(day)[0])}
    assert days == await from_daily_rows(db, f, "day"), f
    assert {"": every_figure(view.totals)} == (await from_daily_rows(db, f, "''") or {"": ((0,) * 6, {})}), f


@pytest.mark.parametrize("narrowing", [
    {"retailer": "shop"}, {"retailer": "mart"}, {"region": "FR-75"}, {"region": "FR-2A"}, {"region": "BE"},
    {"retailer": "nobody"}, {"retailer": "shop", "region": "FR-75"}, {"mode": "delivery", "region": "BE"},
    {"mode": "delivery"}, {"mode": "in_store"}, {"mode": "click_collect"}, {"retailer": "shop", "mode": "delivery"},
    {"retailer": "mart", "mode": "in_store"}, {"region": "FR-75", "mode": "click_collect"},
])
async def test_retailer_and_region_views_equal_the_daily_rows(
    pool: asyncpg.Pool, db: asyncpg.Connection, narrowing: dict[str, str]
) -> None:
    # Partial first and last months, whole months only, inside one month, past the last counted day.
    for since, to in ((date(2025, 10, 20), date(2026, 2, 16)), (date(2025, 11, 1), date(2025, 12, 31)),
                      (date(2025, 11, 5), date(2025, 11, 20)), (date(2025, 12, 28), date(2026, 12, 3))):
        for campaigns in (None, ("spring", "autumn"), ()):
            await assert_view_equals_daily_rows(pool, db, StatsFilters(since=since, to=to, campaigns=campaigns,
                                                                       **narrowing))


async def test_a_retailer_sees_its_own_figures_from_the_roll_ups(pool: asyncpg.Pool, db: asyncpg.Connection) -> None:
    who = Principal(role="retailer", subject="mart")
    f = await scoped_filters(pool, who, StatsQuery(from_=date(2025, 10, 20), to=date(2026, 2, 16)))
    assert f.within == ("r", "mart")
    await assert_view_equals_daily_rows(pool, db, f)
    view = await stats_view(pool, f)
    assert [row.key for row in view.by_retailer] == ["mart"] and view.totals.clicks > 0
    # Read from the roll-ups: the same figures once the daily rows are gone.
    await db.execute("DELETE FROM stats_daily")
    assert await stats_view(pool, f) == view


async def test_a_mode_view_reads_the_roll_ups_within_that_mode(pool: asyncpg.Pool, db: asyncpg.Connection) -> None:
    f = StatsFilters(since=date(2025, 10, 20), to=date(2026, 2, 16), mode="delivery")
    assert f.within == ("o", "delivery")
    view = await stats_view(pool, f)
    assert [row.key for row in view.by_mode] == ["delivery"] and view.totals.clicks > 0
    await db.execute("DELETE FROM stats_daily")
    assert await stats_view(pool, f) == view


async def test_one_mode_of_a_retailer_reads_the_roll_ups_within_both(
    pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    narrowing = {"mode": "delivery", "retailer": "shop"}
    f = StatsFilters(since=date(2025, 10, 20), to=date(2026, 2, 16), **narrowing)
    assert f.within == ("R", "delivery:shop")
    view = await stats_view(pool, f)
    assert [row.key for row in view.by_mode] == [narrowing["mode"]] and view.totals.clicks > 0
    await db.execute("DELETE FROM stats_daily")
    assert await stats_view(pool, f) == view


async def test_the_modes_migration_gives_figures_counted_before_it_their_roll_ups(
    pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    """0012 fills its scopes from the daily rows already there: the same rows the aggregator keeps."""
    query = ("SELECT * FROM stats_rollup_within WHERE scope IN ('o', 'R')"
             " ORDER BY scope, scope_value, grain, dim, campaign, period, value, currency")
    kept = [tuple(row) for row in await db.fetch(query)]
    assert {row[0] for row in kept} == {b"o", b"R"}  # "char" columns come back as bytes
    await db.execute("DELETE FROM stats_rollup_within WHERE scope IN ('o', 'R')")
    migration = (ROOT / "cache/migrations/0012_stats_rollup_modes.sql").read_text()
    await db.execute(migration[migration.index("-- Figures counted so far"):])  # what it does to figures already there
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
