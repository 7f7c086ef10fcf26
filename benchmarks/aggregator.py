"""Event aggregator benchmark: entries counted per second, keyed by stream id or by event id.

    python -m benchmarks.aggregator [--events 20000] [--kept-ids 1000000] [--rounds 3] [--json]

Every event now carries its event id from its first write (edge_api.event_buffer), so the
aggregator's "counted once" table keeps a day of event ids instead of the few minutes of
stream ids it kept before. This measures what that costs, in one run on a scratch database
and a scratch Redis key prefix: the same events drained (`aggregate_once`, batches of 1,000)
(a) without an eid (keyed by stream id, the table pruned as before: small), and (b) with eids
while the table already holds `--kept-ids` eid rows (a busy day's worth). Rounds alternate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from backoffice.aggregator import EID_SUFFIX, aggregate_once
from cache import db as catalog_db
from cache.db import with_database
from cache.embedded import local_or_embedded
from cache.keys import Keys
from edge_api.event_buffer import Record, append_events, with_event_ids


def events(n: int) -> list[Record]:
    """A realistic mix: loads, opens, searches with offers shown, clicks with a price."""
    now = int(time.time() * 1000)
    mix: list[Record] = []
    for i in range(n // 4):
        base: dict[str, str | int | float] = {"campaign": f"c{i % 20}", "gtin": f"{3017620422003 + 7 * (i % 500):014d}",
                "region": f"FR-{i % 95 + 1:02d}", "ts": now}
        mix += [{**base, "kind": "impression"}, {**base, "kind": "open"},
                {**base, "kind": "search", "shown": f'[["r{i % 50}","in_store",2],["r{i % 7}","delivery",1]]'},
                {**base, "kind": "click", "retailer": f"r{i % 50}", "mode": "in_store", "price_cents": 299,
                 "currency": "EUR"}]
    return mix


async def drain_timed(redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool, batch: list[Record]) -> float:
    await append_events(redis, keys, batch)
    started = time.perf_counter()
    counted = 0
    while n := await aggregate_once(redis, keys, pool, consumer="bench"):
        counted += n
    elapsed = time.perf_counter() - started
    assert counted == len(batch), (counted, len(batch))
    return len(batch) / elapsed


async def bench(redis_url: str, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    scratch = f"nearcart_bench_agg_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{scratch}"')
    keys = Keys(f"bench-agg-{uuid.uuid4().hex[:8]}:")
    redis = aioredis.Redis.from_url(redis_url)
    results: dict[str, Any] = {"load_before": os.getloadavg()[0], "events": args.events, "kept_ids": args.kept_ids}
    try:
        conn = await asyncpg.connect(with_database(database_url, scratch))
        await catalog_db.migrate(conn)
        await conn.execute(
            "INSERT INTO stats_entries_counted (stream, ms, seq) SELECT $1, $2::bigint - g * 80, g"
            " FROM generate_series(1, $3) AS g", keys.events + EID_SUFFIX, int(time.time() * 1000), args.kept_ids)
        await conn.execute("VACUUM ANALYZE stats_entries_counted")
        results["table_mb"] = await conn.fetchval("SELECT pg_total_relation_size('stats_entries_counted') / 1e6")
        await conn.close()
        pool = await catalog_db.create_pool(with_database(database_url, scratch), timeout_s=30)
        by_stream_id, by_eid = [], []
        try:
            await drain_timed(redis, keys, pool, events(2000))  # warm-up: plans, pages
            for _ in range(args.rounds):
                by_stream_id.append(await drain_timed(redis, keys, pool, events(args.events)))
                by_eid.append(await drain_timed(redis, keys, pool, with_event_ids(events(args.events))))
        finally:
            await pool.close()
        results["stream_id_per_s"] = statistics.median(by_stream_id)
        results["eid_per_s"] = statistics.median(by_eid)
    finally:
        await redis.delete(keys.events)
        await redis.aclose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        await admin.close()
    return results


def table(r: dict[str, Any]) -> str:
    return "\n".join([
        f"{r['events']:,} events per round, load average {r['load_before']:.1f}, {os.cpu_count()} cores;"
        f" eid table pre-filled with {r['kept_ids']:,} rows ({r['table_mb']:.0f} MB with its index)",
        "",
        "| entries keyed by | entries counted / s (median) | vs. stream id |",
        "|---|---|---|",
        f"| stream id (table pruned within minutes) | {r['stream_id_per_s']:,.0f} | 100 % |",
        f"| event id (a day of ids kept) | {r['eid_per_s']:,.0f} | {r['eid_per_s'] / r['stream_id_per_s']:.0%} |",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--kept-ids", type=int, default=1_000_000, help="eid rows already counted (a day's worth)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from edge_api.settings import load_settings

    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="nearcart-bench-services-") as tmp, local_or_embedded(
        Path(tmp), settings.redis_url, settings.database_url
    ) as (redis_url, database_url):
        results = asyncio.run(bench(redis_url, database_url, args))
    print(json.dumps(results, indent=2) if args.json else table(results))


if __name__ == "__main__":
    main()
