"""Dashboard statistics benchmark: 13 months of daily figures, the heaviest views timed.

    python -m benchmarks.stats [--regions 6] [--retailer-rows 2] [--active 0.6] [--runs 7] [--json]

Creates a scratch database on the configured PostgreSQL (`NEARCART_DATABASE_URL`, else
127.0.0.1, else an embedded one), fills `stats_daily` with 13 months (396 days) of figures
for 2,000 products (100 in each of 20 campaigns) x 50 retailers x 100 regions, builds the
roll-ups the aggregator would have kept, and times `stats_view` (what the dashboard and
`/admin/v1/stats` compute): the median of `--runs` runs of each view, after one warm-up.

Density (sparse, like real traffic): each day, a product has figures in `--regions` of the
100 regions with probability `--active`; there, one row of loads/opens/searches and
`--retailer-rows` rows of offers shown and clicks for retailers and modes that rotate.
The defaults make about 8.5 million daily rows. Rows are generated inside PostgreSQL
(INSERT ... SELECT from generate_series), faster than any COPY from Python.
The scratch database is dropped at the end (unless --keep; --reuse times the views again on
it). Target: every view, the heaviest included, in ≤ 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from backoffice.stats import StatsFilters, stats_view
from cache import db as catalog_db
from cache.db import with_database
from cache.embedded import local_or_embedded

TARGET_MS = 300.0
DAYS, PRODUCTS, CAMPAIGNS, RETAILERS, REGIONS = 396, 2000, 20, 50, 100

# $1 first day, $2 regions per active product-day, $3 share of product-days active.
# Region k of product p on day d is (p*7 + d*13 + k*37) % 100: distinct for each k (37 is prime to 100).
_SHOPPER_ROWS = f"""
INSERT INTO stats_daily (day, campaign, gtin, region, loads, opens, searches, searches_with_offers)
SELECT $1::date + d, 'c' || (p % {CAMPAIGNS}), lpad(p::text, 14, '0'),
       'FR-' || lpad(((p * 7 + d * 13 + k * 37) % {REGIONS})::text, 2, '0'),
       loads, opens, opens + opens / 5, opens * 3 / 4
FROM (SELECT d, p, k, loads, (loads * random() * 0.3)::int AS opens
      FROM (SELECT d, p, k, 5 + (random() * 40)::int AS loads  -- random() per row: in a select list
            FROM generate_series(0, {DAYS - 1}) AS d, generate_series(0, {PRODUCTS - 1}) AS p,
                 generate_series(0, $2 - 1) AS k
            WHERE (hashint4(p * 1000 + d)::bigint + 2147483648) % 1000 < $3::float8 * 1000) AS rows) AS rows
"""
# $4 retailer rows per region: retailer j of (p, d) is (p*3 + d + j*17) % 50, its mode rotates.
_RETAILER_ROWS = f"""
INSERT INTO stats_daily (day, campaign, gtin, retailer_id, mode, region, currency, offers_shown, clicks, intent_cents)
SELECT $1::date + d, 'c' || (p % {CAMPAIGNS}), lpad(p::text, 14, '0'),
       'r' || ((p * 3 + d + j * 17) % {RETAILERS}), (ARRAY['in_store', 'click_collect', 'delivery'])[1 + (p + j) % 3],
       'FR-' || lpad(((p * 7 + d * 13 + k * 37) % {REGIONS})::text, 2, '0'), 'EUR',
       1 + (random() * 6)::int, clicks, clicks * (150 + p % 900)
FROM (SELECT d, p, k, j, (random() * 2.4)::int AS clicks  -- random() per row: in a select list
      FROM generate_series(0, {DAYS - 1}) AS d, generate_series(0, {PRODUCTS - 1}) AS p,
           generate_series(0, $2 - 1) AS k, generate_series(0, $4 - 1) AS j
      WHERE (hashint4(p * 1000 + d)::bigint + 2147483648) % 1000 < $3::float8 * 1000) AS rows
"""


@contextlib.asynccontextmanager
async def without_indexes(conn: asyncpg.Connection, table: str) -> AsyncIterator[None]:
    """Bulk load into `table` with its indexes dropped, then rebuilt as the migrations defined them."""
    key = await conn.fetchrow(
        "SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint"
        " WHERE conrelid = $1::regclass AND contype = 'p'", table)
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 AND indexname <> $2", table, key["conname"])
    for index in indexes:
        await conn.execute(f'DROP INDEX "{index["indexname"]}"')
    await conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{key["conname"]}"')
    yield
    await conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{key["conname"]}" {key["definition"]}', timeout=3600)
    for index in indexes:
        await conn.execute(index["indexdef"], timeout=3600)


async def timed(pool: asyncpg.Pool, filters: StatsFilters, runs: int) -> dict[str, Any]:
    await stats_view(pool, filters)  # warm-up: plans and pages cached, as on a dashboard in use
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        view = await stats_view(pool, filters)
        times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": statistics.median(times), "max_ms": max(times), "products": len(view.by_product),
            "clicks": view.totals.clicks}


async def generate(conn: asyncpg.Connection, since: date, regions: int, retailer_rows: int, active: float,
                   results: dict[str, Any]) -> None:
    await catalog_db.migrate(conn)
    started = time.perf_counter()
    async with without_indexes(conn, "stats_daily"):
        await conn.execute(_SHOPPER_ROWS, since, regions, active, timeout=3600)
        await conn.execute(_RETAILER_ROWS, since, regions, active, retailer_rows, timeout=3600)
    results["generate_s"] = time.perf_counter() - started
    started = time.perf_counter()
    await conn.execute("SELECT stats_rebuild_rollups()", timeout=3600)
    await conn.execute("VACUUM ANALYZE stats_daily", timeout=3600)
    await conn.execute("VACUUM ANALYZE stats_rollup", timeout=3600)
    results["rollups_s"] = time.perf_counter() - started


async def bench(database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    scratch = args.reuse or f"nearcart_bench_stats_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database_url)
    if not args.reuse:
        await admin.execute(f'CREATE DATABASE "{scratch}"')
    scratch_url = with_database(database_url, scratch)
    results: dict[str, Any] = {"load_before": os.getloadavg()[0], "database": scratch, "generate_s": 0.0,
                               "rollups_s": 0.0}
    to = date.today()
    since = to - timedelta(days=DAYS - 1)
    try:
        conn = await asyncpg.connect(scratch_url)
        if not args.reuse:
            await generate(conn, since, args.regions, args.retailer_rows, args.active, results)
        results["daily_rows"] = await conn.fetchval("SELECT count(*) FROM stats_daily")
        results["rollup_rows"] = await conn.fetchval("SELECT count(*) FROM stats_rollup")
        results["within_rows"] = await conn.fetchval("SELECT count(*) FROM stats_rollup_within")
        results["table_mb"] = await conn.fetchval("SELECT pg_total_relation_size('stats_daily') / 1e6")
        await conn.close()
        pool = await catalog_db.create_pool(scratch_url, timeout_s=30)
        try:
            views = {
                "admin, every campaign, whole period": StatsFilters(since=since, to=to),
                "brand, 1 campaign, whole period": StatsFilters(since=since, to=to, campaigns=("c3",)),
                "admin, last 30 days": StatsFilters(since=to - timedelta(days=29), to=to),
                # What a retailer:r7 token or login sees (stats_scope pins the retailer): every campaign.
                "retailer r7 (its own view), whole period": StatsFilters(since=since, to=to, retailer="r7"),
                "retailer r7, last 30 days": StatsFilters(since=to - timedelta(days=29), to=to, retailer="r7"),
                "one region, whole period": StatsFilters(since=since, to=to, region="FR-13"),
                "brand, 1 campaign, one region, whole period": StatsFilters(since=since, to=to, campaigns=("c3",),
                                                                            region="FR-13"),
                "one product, whole period (daily rows)": StatsFilters(since=since, to=to, gtin=f"{42:014d}"),
                "retailer r7 in one region, whole period (daily rows)": StatsFilters(since=since, to=to,
                                                                                     retailer="r7", region="FR-13"),
                "one mode (delivery), whole period": StatsFilters(since=since, to=to, mode="delivery"),
                "brand, 1 campaign, one mode, last 30 days": StatsFilters(since=to - timedelta(days=29), to=to,
                                                                          campaigns=("c3",), mode="in_store"),
                "retailer r7, one mode, whole period": StatsFilters(since=since, to=to, retailer="r7",
                                                                    mode="delivery"),
                "one region, one mode, whole period (daily rows)": StatsFilters(since=since, to=to, region="FR-13",
                                                                                mode="delivery"),
            }
            results["views"] = {name: await timed(pool, f, args.runs) for name, f in views.items()}
        finally:
            await pool.close()
    finally:
        if not args.keep:
            await admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        await admin.close()
    return results


def table(r: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"{r['daily_rows']:,} daily rows ({r['table_mb']:,.0f} MB with indexes), {r['rollup_rows']:,} roll-up rows"
        f" and {r['within_rows']:,} within a retailer, region, mode or retailer's mode:"
        f" {DAYS} days x {PRODUCTS:,} products x {RETAILERS} retailers x {REGIONS} regions, {CAMPAIGNS} campaigns;"
        f" {args.regions} regions per active product-day ({args.active:.0%} active), {args.retailer_rows} retailer"
        f" rows per region. Generated in {r['generate_s']:.0f} s, roll-ups built in {r['rollups_s']:.0f} s;"
        f" load average {r['load_before']:.1f} before, {os.cpu_count()} cores."
        + (f" Database kept: {r['database']}" if args.keep else ""),
        "",
        f"| view | median ms ({args.runs} runs) | max ms | products listed | clicks | vs. target {TARGET_MS:.0f} ms |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in r["views"].items():
        lines.append(f"| {name} | {v['median_ms']:.0f} | {v['max_ms']:.0f} | {v['products']:,} | {v['clicks']:,}"
                     f" | {v['median_ms'] / TARGET_MS:.2f}x |")
    name, heaviest = max(((name, v["median_ms"]) for name, v in r["views"].items()), key=lambda item: item[1])
    lines += ["", f"heaviest view ({name}): {heaviest:.0f} ms, target ≤ {TARGET_MS:.0f} ms:"
              f" {'ok' if heaviest <= TARGET_MS else 'MISSED'}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--regions", type=int, default=6, help="regions with figures per active product-day")
    parser.add_argument("--retailer-rows", type=int, default=2, help="retailer rows per region and product-day")
    parser.add_argument("--active", type=float, default=0.6, help="share of product-days with any figure")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="leave the scratch database (its name is printed)")
    parser.add_argument("--reuse", metavar="DATABASE", help="time the views on a database --keep left")
    args = parser.parse_args()
    from edge_api.settings import load_settings

    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="nearcart-bench-services-") as tmp, local_or_embedded(
        Path(tmp), settings.redis_url, settings.database_url
    ) as (_, database_url):
        results = asyncio.run(bench(database_url, args))
    print(json.dumps(results, indent=2) if args.json else table(results, args))


if __name__ == "__main__":
    main()
