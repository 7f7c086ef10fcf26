"""Feed ingestion benchmark: file → PostgreSQL → Redis index, full rebuild, memory.

    python -m benchmarks.ingest [--offers 1000000] [--stores 5000] [--json]

Creates a scratch database and Redis key prefix on the configured servers
(`NEARCART_DATABASE_URL` / `NEARCART_REDIS_URL`, else 127.0.0.1), generates a
gzipped CSV offers feed, and measures:

- the ingest of that feed into a live index, in a child process so its peak RSS is the ingest's own;
- the same feed again (every row unchanged: the daily re-send of a full feed);
- a full `index build` from PostgreSQL;
- Redis bytes per in-stock offer (MEMORY USAGE of the index keys).

Everything scratch is dropped at the end. Targets (2-core machine): ≥ 100,000 rows/s
end to end, full build of 1M offers ≤ 30 s, ingest peak RSS ≤ 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
import uvloop

from cache import db as catalog_db
from cache.db import with_database
from cache.embedded import local_or_embedded
from cache.index import build_index, live_version
from cache.ingest import ingest_files
from cache.keys import Keys
from cache.redis_packing import ingest_redis

TARGET_ROWS_S = 100_000
TARGET_BUILD_S = 30.0
TARGET_RSS_MB = 300
RETAILERS = 20
STAMP = "2024-06-01T08:00:00+02:00"
NEXT_STAMP = "2024-06-02T08:00:00+02:00"


def gtin13(body: int) -> str:
    digits = f"{body:012d}"
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits))
    return digits + str((10 - total % 10) % 10)


def write_feeds(directory: Path, offers: int, stores: int, seed: int = 1) -> dict[str, Path]:
    """Retailers, stores across France, and `offers` offers (1 in 20 online, 15 % out of stock).

    "update" is the next day's feed of the same offers: every row newer, one in ten with a new quantity.
    """
    rng = random.Random(seed)
    paths = {kind: directory / name for kind, name in (
        ("retailers", "retailers.csv"), ("stores", "stores.csv"), ("offers", "offers.csv.gz"),
        ("update", "update.csv.gz"),
    )}
    with paths["retailers"].open("w") as out:
        out.write("retailer_id,name,logo_url,cart_url_template,delivery_countries\n")
        for r in range(RETAILERS):
            out.write(f"r{r},Retailer {r},,https://r{r}.example/cart?add={{gtin}}&store={{store_id}},FR|BE\n")
    store_rows = []
    with paths["stores"].open("w") as out:
        out.write("retailer_id,store_id,name,address,postal_code,city,country,lat,lon\n")
        for s in range(stores):
            retailer = f"r{s % RETAILERS}"
            lat, lon = rng.uniform(43.0, 50.5), rng.uniform(-1.5, 7.0)
            out.write(f"{retailer},s{s},Store {s},{s} rue du Commerce,75001,Paris,FR,{lat:.5f},{lon:.5f}\n")
            store_rows.append((retailer, f"s{s}"))
    write_offers(paths["offers"], store_rows, offers, seed, STAMP, changed=0.0)
    write_offers(paths["update"], store_rows, offers, seed, NEXT_STAMP, changed=0.1)
    return paths


def write_offers(
    path: Path, store_rows: list[tuple[str, str]], offers: int, seed: int, stamp: str, changed: float
) -> None:
    rng = random.Random(seed)
    change = random.Random(seed + 1).random
    gtins = [gtin13(376_000_000_000 + i * 37) for i in range(max(1000, offers // 250))]
    stores = len(store_rows)
    online = offers // 20
    per_store, extra = divmod(offers - online, stores)
    if per_store + 1 > len(gtins):
        raise SystemExit(f"--stores {stores} is too few for {offers} offers")
    with gzip.open(path, "wt", compresslevel=1) as out:
        out.write("retailer_id,store_id,gtin,price,currency,quantity,modes,updated_at\n")
        chunk: list[str] = []
        rand = rng.random
        for s, (retailer, store_id) in enumerate(store_rows):
            for j in range(per_store + (1 if s < extra else 0)):
                # 7919 is prime: the j-th GTIN of a store never repeats within it.
                gtin = gtins[(j * 7919 + s * 31) % len(gtins)]
                cents = 50 + int(rand() * 5000)
                quantity = 0 if rand() < 0.15 else 1 + int(rand() * 50)
                modes = "in_store|click_collect" if rand() < 0.5 else "in_store"
                if change() < changed:
                    quantity = (quantity + 7) % 40
                price = f"{cents // 100}.{cents % 100:02d}"
                chunk.append(f"{retailer},{store_id},{gtin},{price},EUR,{quantity},{modes},{stamp}\n")
            if len(chunk) > 50_000:
                out.write("".join(chunk))
                chunk = []
        for i in range(online):
            gtin = gtins[(i // RETAILERS) % len(gtins)]
            cents = 50 + int(rand() * 5000)
            price = f"{cents // 100}.{cents % 100:02d}"
            chunk.append(f"r{i % RETAILERS},,{gtin},{price},EUR,{int(rand() * 20)},delivery,{stamp}\n")
        out.write("".join(chunk))


def process_cpu_s(pid: int) -> float | None:
    """utime + stime of a local process (the PostgreSQL backend serving us), None if not readable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def redis_cpu_s(redis: aioredis.Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


class _MeteredConnection(asyncpg.Connection):  # type: ignore[misc]
    """The ingest's extra connection: adds its backend's CPU time to `extra_cpu_s` when it closes."""

    extra_cpu_s: list[float] = []

    async def close(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 (asyncpg's signature)
        cpu = process_cpu_s(self.get_server_pid())
        if cpu is not None:
            self.extra_cpu_s.append(cpu - self._cpu_at_start)
        await super().close(timeout=timeout)

    @classmethod
    async def open(cls, database_url: str) -> asyncpg.Connection:
        conn = await asyncpg.connect(database_url, connection_class=cls)
        conn._cpu_at_start = process_cpu_s(conn.get_server_pid()) or 0.0
        return conn


async def child_ingest(database_url: str, redis_url: str, prefix: str, feed: Path) -> dict[str, Any]:
    """Runs in its own process: one offers ingest, timed, with the process's peak RSS and CPU split.

    Connections and Redis client as `nearcart ingest` makes them (a second connection, hiredis packing).
    """
    conn = await asyncpg.connect(database_url)
    redis = ingest_redis(redis_url)
    try:
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        pg_before, redis_before = process_cpu_s(backend), await redis_cpu_s(redis)
        own_before = time.process_time()
        started = time.perf_counter()
        report = await ingest_files(
            conn, redis, Keys(prefix), "offers", [feed], connect=lambda: _MeteredConnection.open(database_url)
        )
        seconds = time.perf_counter() - started
        own = time.process_time() - own_before
        pg_after, redis_cpu = process_cpu_s(backend), await redis_cpu_s(redis) - redis_before
        if pg_after is not None:
            pg_after += sum(_MeteredConnection.extra_cpu_s)
    finally:
        await conn.close()
        await redis.aclose()
    return {
        "rows": report.rows_read, "loaded": report.rows_loaded, "rejected": report.rows_rejected,
        "index_changes": report.index_changes, "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu_python_s": own, "cpu_postgres_s": None if pg_after is None or pg_before is None else pg_after - pg_before,
        "cpu_redis_s": redis_cpu,
    }


def run_child(database_url: str, redis_url: str, prefix: str, feed: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.ingest", "--child", str(feed),
         "--database-url", database_url, "--redis-url", redis_url, "--prefix", prefix],
        check=True, capture_output=True, text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def index_bytes(redis: aioredis.Redis, keys: Keys, version: int) -> int:
    total = 0
    async for key in redis.scan_iter(match=keys.version_pattern(version), count=2000):
        total += int(await redis.memory_usage(key, samples=0) or 0)
    return total


@contextlib.asynccontextmanager
async def scratch_catalog(database_url: str, redis: aioredis.Redis) -> AsyncIterator[tuple[str, str]]:
    """(url, Redis key prefix) of a migrated scratch database; both are removed afterwards."""
    scratch = f"nearcart_bench_{uuid.uuid4().hex[:8]}"
    prefix = f"ncbench{uuid.uuid4().hex[:6]}:"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{scratch}"')
    try:
        url = with_database(database_url, scratch)
        conn = await asyncpg.connect(url)
        await catalog_db.migrate(conn)
        await conn.close()
        yield url, prefix
    finally:
        async for key in redis.scan_iter(match=prefix + "*", count=5000):
            await redis.unlink(key)
        await admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        await admin.close()


async def bench(database_url: str, redis_url: str, offers: int, stores: int) -> dict[str, Any]:
    redis = aioredis.Redis.from_url(redis_url)
    results: dict[str, Any] = {"offers": offers, "stores": stores, "load_before": os.getloadavg()[0]}
    try:
        async with scratch_catalog(database_url, redis) as (scratch_url, prefix):
            keys = Keys(prefix)
            conn = await asyncpg.connect(scratch_url)
            with tempfile.TemporaryDirectory(prefix="nearcart-bench-") as tmp:
                started = time.perf_counter()
                feeds = write_feeds(Path(tmp), offers, stores)
                results["generate_s"] = time.perf_counter() - started
                results["feed_mb"] = feeds["offers"].stat().st_size / 1e6
                for kind in ("retailers", "stores"):
                    await ingest_files(conn, redis, keys, kind, [feeds[kind]])
                await build_index(conn, redis, keys, grace_s=0)  # an empty live index: offers apply incrementally
                for key, feed in (("ingest", "offers"), ("reingest", "offers"), ("update", "update")):
                    results[key] = await asyncio.to_thread(run_child, scratch_url, redis_url, prefix, feeds[feed])
            started = time.perf_counter()
            version = await build_index(conn, redis, keys, grace_s=0)
            results["build_s"] = time.perf_counter() - started
            in_stock = await conn.fetchval(
                "SELECT count(*) FROM offers o LEFT JOIN stores s USING (retailer_id, store_id) WHERE o.quantity > 0"
            )
            results["in_stock"] = in_stock
            results["redis_bytes_per_offer"] = await index_bytes(redis, keys, version) / max(1, in_stock)
            assert await live_version(redis, keys) == version
            await conn.close()
    finally:
        await redis.aclose()
    return results


def _cpu(run: dict[str, Any]) -> str:
    """CPU µs per row in each process: wall time depends on what else the machine runs, this does not."""
    parts = [("py", run["cpu_python_s"]), ("pg", run["cpu_postgres_s"]), ("redis", run["cpu_redis_s"])]
    return " ".join(f"{name} {seconds / run['rows'] * 1e6:.1f}" for name, seconds in parts if seconds is not None)


def table(r: dict[str, Any]) -> str:
    ingest = r["ingest"]
    lines = [
        f"{r['offers']:,} offers, {r['stores']:,} stores, feed {r['feed_mb']:.1f} MB gzipped CSV;"
        f" load average {r['load_before']:.1f} before, {os.cpu_count()} cores",
        "",
        "| run (file → PG → index) | rows/s | rows | loaded | index changes | CPU µs/row | peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, key in (("new offers", "ingest"), ("same feed again", "reingest"), ("next day, 10 % changed", "update")):
        run = r[key]
        lines.append(
            f"| {label} | {run['rows'] / run['seconds']:,.0f} | {run['rows']:,} | {run['loaded']:,}"
            f" | {run['index_changes']:,} | {_cpu(run)} | {run['peak_rss_mb']:.0f} MB |"
        )
    checks = [
        ("ingest rows/s (new offers)", f"{ingest['rows'] / ingest['seconds']:,.0f}", f"≥ {TARGET_ROWS_S:,}",
         ingest["rows"] / ingest["seconds"] >= TARGET_ROWS_S),
        ("same feed again changes nothing", f"{r['reingest']['loaded']} rows, {r['reingest']['index_changes']} keys",
         "0", r["reingest"]["loaded"] == 0 and r["reingest"]["index_changes"] == 0),
        ("full index build", f"{r['build_s']:.1f} s for {r['in_stock']:,} in-stock offers",
         f"≤ {TARGET_BUILD_S:.0f} s per 1M", r["build_s"] <= TARGET_BUILD_S * max(1.0, r["offers"] / 1e6)),
        ("ingest peak RSS", f"{max(r[k]['peak_rss_mb'] for k in ('ingest', 'reingest', 'update')):.0f} MB",
         f"≤ {TARGET_RSS_MB} MB", max(r[k]["peak_rss_mb"] for k in ("ingest", "reingest", "update")) <= TARGET_RSS_MB),
        ("Redis bytes per in-stock offer", f"{r['redis_bytes_per_offer']:.0f} B", "", True),
    ]
    lines += ["", "| measure | value | target | ok |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {'yes' if ok else 'NO'} |" for a, b, c, ok in checks]
    return "\n".join(lines)


def bench_parser(doc: str, offers: int, stores: int) -> argparse.ArgumentParser:
    """The options every ingest benchmark takes: --offers, --stores, --json."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--offers", type=int, default=offers)
    parser.add_argument("--stores", type=int, default=stores)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser


def main() -> None:
    parser = bench_parser(__doc__, offers=1_000_000, stores=5000)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(uvloop.run(child_ingest(args.database_url, args.redis_url, args.prefix, args.child))))
        return
    results = on_services(lambda database_url, redis_url: bench(database_url, redis_url, args.offers, args.stores))
    print(json.dumps(results, indent=2) if args.json else table(results))


def on_services(work: Callable[[str, str], Coroutine[Any, Any, dict[str, Any]]]) -> dict[str, Any]:
    """`work(database_url, redis_url)` run on the configured servers, else this machine's, else embedded ones."""
    from edge_api.settings import load_settings

    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="nearcart-bench-services-") as tmp, local_or_embedded(
        Path(tmp), settings.redis_url, settings.database_url
    ) as (redis_url, database_url):
        return asyncio.run(work(database_url, redis_url))


if __name__ == "__main__":
    main()
