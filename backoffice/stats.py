"""The figures brands know (SPEC "Statistics") for a period and filters: what the dashboard, its CSV
export and `GET /admin/v1/stats` show, computed in one place.

Without a product, retailer, mode or region filter, a view reads the roll-ups the aggregator
keeps (`stats_rollup`: whole months, plus the days of partial ones), a few thousand rows
whatever the traffic; filtered to one retailer, one region, one mode, or one mode of one retailer,
the same roll-ups within it (`stats_rollup_within`); with other filters, the daily rows
(`stats_daily`) they select, through an index for the likely pairs (a retailer in a region, a mode
in a region). Scoping is the caller's: it passes the campaigns a role may see (None: all, for an admin) and, for a
retailer, its own retailer id. Loads, opens and searches have no retailer or mode, so a
retailer or mode filter leaves only offers shown, clicks and the purchase-intent value.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

COUNTS = ("loads", "opens", "searches", "searches_with_offers", "offers_shown", "clicks")
_SUMS = ", ".join(f"sum({name})::bigint AS {name}" for name in (*COUNTS, "intent_cents"))
# Dimension of a table: roll-up code, stats_daily column.
DIMENSIONS = {"product": ("p", "gtin"), "retailer": ("r", "retailer_id"), "mode": ("o", "mode"),
              "region": ("g", "region")}


class StatsFilters(msgspec.Struct, frozen=True, kw_only=True):
    since: date
    to: date
    # The campaigns the caller may see and asked for; None: every campaign (admin only).
    campaigns: tuple[str, ...] | None = None
    gtin: str | None = None  # 14 digits
    retailer: str | None = None
    mode: str | None = None
    region: str | None = None

    @property
    def narrowed(self) -> bool:
        """Whether a filter below the campaign applies (roll-ups do not keep those combinations)."""
        return any(value is not None for value in (self.gtin, self.retailer, self.mode, self.region))

    @property
    def within(self) -> tuple[str, str] | None:
        """(scope, value) of `stats_rollup_within` that holds this view (see SCOPES), else None."""
        if self.gtin is not None:
            return None
        given = "".join(dim for dim, value in (("r", self.retailer), ("g", self.region), ("o", self.mode))
                        if value is not None)
        scope = next((scope for scope, dims in SCOPES.items() if dims == given), None)
        if scope is None:
            return None
        values = [value for value in (self.retailer, self.region) if value is not None]
        return scope, scope_value(scope, self.mode, values[0] if values else "")


# Scopes of `stats_rollup_within` (migrations 0009, 0012) and the dimensions each one fixes: within a
# retailer, a region, a mode, one mode of a retailer ("delivery:r7").
SCOPES = {"r": "r", "g": "g", "o": "o", "R": "ro"}


def scope_value(scope: str, mode: str | None, other: str) -> str:
    """The `scope_value` of a roll-up row: the mode first in the paired scope (modes hold no ':')."""
    if scope == "R":
        return f"{mode}:{other}"
    return mode or "" if scope == "o" else other


class Figures(msgspec.Struct, kw_only=True):
    loads: int = 0
    opens: int = 0
    searches: int = 0
    searches_with_offers: int = 0
    searches_without_offers: int = 0
    offers_shown: int = 0
    clicks: int = 0
    # clicks / opens, to 4 decimals; null without opens.
    click_through_rate: float | None = None
    # Sum of the clicked offers' prices, per currency: {"EUR": "1234.50"}.
    intent_value: dict[str, str] = {}


class DayFigures(Figures, kw_only=True):
    day: date


class KeyFigures(Figures, kw_only=True):
    key: str


class StatsView(msgspec.Struct, kw_only=True):
    from_: date = msgspec.field(name="from")
    to: date
    campaigns: list[str] | None
    gtin: str | None = None
    retailer: str | None = None
    mode: str | None = None
    region: str | None = None
    totals: Figures
    daily: list[DayFigures]
    by_product: list[KeyFigures]
    by_retailer: list[KeyFigures]
    by_mode: list[KeyFigures]
    by_region: list[KeyFigures]


class _Sums:
    """Counts and value per currency of one key, as rows (one per currency) add up."""

    __slots__ = ("counts", "cents")

    def __init__(self) -> None:
        self.counts = [0] * len(COUNTS)
        self.cents: dict[str, int] = {}

    def add(self, row: Any) -> None:
        for i, name in enumerate(COUNTS):
            self.counts[i] += row[name]
        if row["currency"] and row["intent_cents"]:
            self.cents[row["currency"]] = self.cents.get(row["currency"], 0) + row["intent_cents"]

    def named(self) -> dict[str, Any]:
        loads, opens, searches, with_offers, shown, clicks = self.counts
        return {
            "loads": loads, "opens": opens, "searches": searches, "searches_with_offers": with_offers,
            "searches_without_offers": searches - with_offers, "offers_shown": shown, "clicks": clicks,
            "click_through_rate": round(clicks / opens, 4) if opens else None,
            "intent_value": {cur: f"{cents // 100}.{cents % 100:02d}" for cur, cents in sorted(self.cents.items())},
        }


def _sum_by_key(rows: Sequence[Any]) -> dict[Any, _Sums]:
    found: dict[Any, _Sums] = {}
    for row in rows:
        found.setdefault(row["key"], _Sums()).add(row)
    return found


def _month_after(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _plan(since: date, to: date, today: date) -> list[tuple[str, date, date, int]]:
    """[since, to] as roll-up parts to add (+1) or take away (-1): (grain, first, last, sign).

    Whole months come from monthly rows. A month the period cuts comes from its days, or from
    its monthly row minus the days outside the period when those are fewer: days after today
    hold nothing yet, so the last 13 months up to today read 14 monthly rows and a few days.
    """
    months: list[tuple[str, date, date, int]] = []
    days: list[tuple[str, date, date, int]] = []
    month = since.replace(day=1)
    data_end = today + timedelta(days=1)  # another server's clock may be a little ahead
    while month <= to:
        after = _month_after(month)
        last_day = min(after - timedelta(days=1), data_end)
        first_in, last_in = max(since, month), min(to, last_day)
        inside = (last_in - first_in).days + 1
        outside = (last_day - month).days + 1 - max(0, inside)
        if inside > 0 and outside < inside:
            if months and months[-1][2] == month - timedelta(days=1):
                months[-1] = ("m", months[-1][1], after - timedelta(days=1), 1)  # consecutive months: one range
            else:
                months.append(("m", month, after - timedelta(days=1), 1))
            if first_in > month:
                days.append(("d", month, first_in - timedelta(days=1), -1))
            if last_in < last_day:
                days.append(("d", last_in + timedelta(days=1), last_day, -1))
        elif inside > 0:
            days.append(("d", first_in, last_in, 1))
        month = after
    return months + days


# Statements are built from what is asked, not `($n IS NULL OR col = $n)`: asyncpg prepares each
# statement, and PostgreSQL's generic plan for the latter scans the whole table.
_METRICS = ", ".join((*COUNTS, "intent_cents"))
_NEGATED = ", ".join(f"-{name} AS {name}" for name in (*COUNTS, "intent_cents"))


def _campaign_clause(f: StatsFilters, args: list[Any]) -> str:
    if f.campaigns is None:
        return ""
    args.append(list(f.campaigns))
    return f" AND campaign = ANY(${len(args)})"


def _rollup_source(f: StatsFilters, args: list[Any]) -> str:
    """The roll-up table of the view and the rows of it that are its (scope and campaigns), as SQL."""
    if f.within is None:
        return "stats_rollup WHERE TRUE" + _campaign_clause(f, args)
    scope, value = f.within
    args.append(value)
    return f"stats_rollup_within WHERE scope = '{scope}' AND scope_value = ${len(args)}" + _campaign_clause(f, args)


async def _rollup_table(pool: asyncpg.Pool, dim: str, f: StatsFilters) -> list[Any]:
    """One table from the roll-ups (see `_plan`); `dim` is one of DIMENSIONS', never the caller's."""
    args: list[Any] = []
    source = _rollup_source(f, args)
    parts = []
    for grain, first, last, sign in _plan(f.since, f.to, datetime.now(UTC).date()):
        args += [first, last]
        parts.append(f"SELECT value, currency, {_METRICS if sign > 0 else _NEGATED} FROM {source}"
                     f" AND grain = '{grain}' AND dim = '{dim}' AND period BETWEEN ${len(args) - 1} AND ${len(args)}")
    if not parts:
        return []
    return list(await pool.fetch(
        f"SELECT value AS key, currency, {_SUMS} FROM ({' UNION ALL '.join(parts)}) AS parts GROUP BY value, currency",
        *args,
    ))


async def _daily_rollup(pool: asyncpg.Pool, f: StatsFilters) -> list[Any]:
    args: list[Any] = [f.since, f.to]
    source = _rollup_source(f, args)
    return list(await pool.fetch(
        f"SELECT period AS key, currency, {_SUMS} FROM {source}"
        " AND grain = 'd' AND dim = 'a' AND period BETWEEN $1 AND $2 GROUP BY period, currency",
        *args,
    ))


_TABLE_COLUMNS = ("day", *(column for _, column in DIMENSIONS.values()))


async def _facts(pool: asyncpg.Pool, f: StatsFilters) -> list[list[dict[str, Any]]]:
    """The daily series and the four tables from the daily rows the filters select, in one scan.

    A filtered view's rows are scattered over the table (a retailer's among everyone's): reading
    them once for all five groupings (GROUPING SETS) rather than once per table.
    """
    args: list[Any] = [f.since, f.to]
    where = "day BETWEEN $1 AND $2" + _campaign_clause(f, args)
    for name, value in (("gtin", f.gtin), ("retailer_id", f.retailer), ("mode", f.mode), ("region", f.region)):
        if value is not None:
            args.append(value)
            where += f" AND {name} = ${len(args)}"
    sets = ", ".join(f"({column}, currency)" for column in _TABLE_COLUMNS)
    async with pool.acquire() as conn, conn.transaction():
        # asyncpg prepares each statement; from its sixth run PostgreSQL may switch to a generic plan,
        # which for two filters (a retailer in one region) ignores their index: 12 ms became 700-960 ms.
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        rows = await conn.fetch(
            f"SELECT {', '.join(_TABLE_COLUMNS)}, currency, {_SUMS} FROM stats_daily WHERE {where}"
            f" GROUP BY GROUPING SETS ({sets})", *args,
        )
    tables: list[list[dict[str, Any]]] = [[] for _ in _TABLE_COLUMNS]
    for row in rows:
        # Columns are NOT NULL: the one a row is grouped by is the one that is not null.
        i, key = next((i, row[column]) for i, column in enumerate(_TABLE_COLUMNS) if row[column] is not None)
        if key == "" and _TABLE_COLUMNS[i] in ("retailer_id", "mode"):
            continue  # loads, opens and searches have no retailer or mode
        tables[i].append({**dict(row), "key": key})
    return tables


def _table(rows: Sequence[Any]) -> list[KeyFigures]:
    sums = _sum_by_key(rows)
    # A key whose figures a month had but the period's days took away again is no row.
    table = [KeyFigures(key=str(key).strip(), **s.named()) for key, s in sums.items() if any(s.counts) or s.cents]
    # Most clicked first, then most opened; the key settles ties so the order never wobbles.
    table.sort(key=lambda row: (-row.clicks, -row.opens, -row.offers_shown, row.key))
    return table


async def stats_view(pool: asyncpg.Pool, filters: StatsFilters) -> StatsView:
    """Totals, a daily series (every day of the period) and tables by product, retailer, mode and region."""
    f = filters
    if f.narrowed and f.within is None:
        daily_rows, *tables = await _facts(pool, f)
    else:
        # Within a scope, the table of each dimension it fixes is one row, its total: from the daily series.
        own = SCOPES[f.within[0]] if f.within else ""
        queries = [_daily_rollup(pool, f), *(_rollup_table(pool, dim, f) for dim, _ in DIMENSIONS.values()
                                             if dim not in own)]
        daily_rows, *tables = await asyncio.gather(*queries)  # each on a connection of its own
        fixed = {"r": f.retailer, "o": f.mode, "g": f.region}
        for at, dim in enumerate(dim for dim, _ in DIMENSIONS.values()):
            if dim in own:
                tables.insert(at, [{**dict(row), "key": fixed[dim]} for row in daily_rows])
    by_day = _sum_by_key(daily_rows)
    total = _Sums()
    for row in daily_rows:
        total.add(row)
    days = [f.since + timedelta(days=i) for i in range((f.to - f.since).days + 1)]
    daily = [DayFigures(day=day, **(by_day[day].named() if day in by_day else _Sums().named())) for day in days]
    by_product, by_retailer, by_mode, by_region = (_table(rows) for rows in tables)
    return StatsView(
        from_=f.since, to=f.to, campaigns=list(f.campaigns) if f.campaigns is not None else None,
        gtin=f.gtin, retailer=f.retailer, mode=f.mode, region=f.region, totals=Figures(**total.named()),
        daily=daily, by_product=by_product, by_retailer=by_retailer, by_mode=by_mode, by_region=by_region,
    )


def to_csv(view: StatsView) -> str:
    """Exactly the view's figures, one table after another: `table` says which (total, day, product...)."""
    currencies = sorted({cur for row in _rows(view) for cur in row[1].intent_value})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["table", "key", *COUNTS[:4], "searches_without_offers", *COUNTS[4:], "click_through_rate",
                     *(f"intent_value_{cur}" for cur in currencies)])
    for table, figures, key in _rows(view):
        writer.writerow([
            table, key, figures.loads, figures.opens, figures.searches, figures.searches_with_offers,
            figures.searches_without_offers, figures.offers_shown, figures.clicks,
            "" if figures.click_through_rate is None else f"{figures.click_through_rate:.4f}",
            *(figures.intent_value.get(cur, "0.00") for cur in currencies),
        ])
    return out.getvalue()


def _rows(view: StatsView) -> list[tuple[str, Figures, str]]:
    rows: list[tuple[str, Figures, str]] = [("total", view.totals, "")]
    rows += [("day", day, day.day.isoformat()) for day in view.daily]
    for table, entries in (("product", view.by_product), ("retailer", view.by_retailer), ("mode", view.by_mode),
                           ("region", view.by_region)):
        rows += [(table, entry, entry.key) for entry in entries]
    return rows
