"""Ingest speed of a Google local inventory (TSV) beside nearcart's own CSV, same offers, same run.

    python -m benchmarks.ingest_formats [--offers 200000] [--stores 2000] [--json]

One retailer's offers are written twice, gzipped: as nearcart's CSV and as a Google local product
inventory naming items by id (mapped to GTINs by its product feed, loaded first, as retailers do).
Each file is loaded into a fresh scratch database and Redis prefix (new offers into a live index),
then read and validated alone (no database): the table shows both rows/s and the cost of the format.
Servers: `NEARCART_DATABASE_URL` / `NEARCART_REDIS_URL`, else 127.0.0.1, else embedded ones.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.ingest import bench_parser, gtin13, on_services, scratch_catalog
from cache.feed_reader import FeedReader
from cache.formats.base import FeedOptions
from cache.index import build_index
from cache.ingest import ingest_files
from cache.keys import Keys
from cache.redis_packing import ingest_redis
from cache.row_rules import offer_validator

RETAILER = "r0"
AS_OF = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
STAMP = AS_OF.isoformat()


def write_feeds(directory: Path, offers: int, stores: int, seed: int = 1) -> dict[str, Path]:
    """The retailer, its stores, its product feed, and the same offers as nearcart CSV and Google TSV."""
    rng = random.Random(seed)
    paths = {name: directory / name for name in (
        "retailers.csv", "stores.csv", "products.tsv", "offers.csv.gz", "inventory.tsv.gz")}
    paths["retailers.csv"].write_text("retailer_id,name,cart_url_template\n"
                                      f"{RETAILER},Retailer,https://r.example/cart?add={{gtin}}\n")
    with paths["stores.csv"].open("w") as out:
        out.write("retailer_id,store_id,name,country,lat,lon\n")
        for s in range(stores):
            out.write(f"{RETAILER},s{s},Store {s},FR,{rng.uniform(43.0, 50.5):.5f},{rng.uniform(-1.5, 7.0):.5f}\n")
    gtins = [gtin13(376_000_000_000 + i * 37) for i in range(max(1000, offers // 100))]
    with paths["products.tsv"].open("w") as out:
        out.write("id\ttitle\tgtin\n")
        out.writelines(f"SKU-{i}\tProduct {i}\t{gtin}\n" for i, gtin in enumerate(gtins))
    per_store = -(-offers // stores)
    with gzip.open(paths["offers.csv.gz"], "wt", compresslevel=1) as csv_out, \
            gzip.open(paths["inventory.tsv.gz"], "wt", compresslevel=1) as tsv_out:
        csv_out.write("retailer_id,store_id,gtin,price,currency,quantity,modes,updated_at\n")
        tsv_out.write("store code\tid\tavailability\tprice\tquantity\tpickup method\tpickup sla\n")
        rand = rng.random
        for n in range(offers):
            s, j = divmod(n, per_store)
            item = (j * 7919 + s * 31) % len(gtins)  # 7919 is prime: no item twice in a store
            cents = 50 + int(rand() * 5000)
            price = f"{cents // 100}.{cents % 100:02d}"
            quantity = 0 if rand() < 0.15 else 1 + int(rand() * 50)
            pickup = rand() < 0.5
            availability = "out of stock" if not quantity else "limited availability" if quantity <= 3 else "in stock"
            modes = "in_store|click_collect" if pickup else "in_store"
            csv_out.write(f"{RETAILER},s{s},{gtins[item]},{price},EUR,{min(quantity, 3) if quantity <= 3 else quantity}"
                          f",{modes},{STAMP}\n")
            tsv_out.write(f"s{s}\tSKU-{item}\t{availability}\t{price} EUR\t{quantity}\t"
                          f"{'buy' if pickup else 'not supported'}\t{'same day' if pickup else ''}\n")
    return paths


async def load(database_url: str, redis_url: str, feeds: dict[str, Path], offers_file: str) -> dict[str, Any]:
    """A fresh catalog with the retailer, stores and item map; then the offers file, timed."""
    redis = ingest_redis(redis_url)
    options = FeedOptions(retailer=RETAILER, as_of=AS_OF)
    try:
        async with scratch_catalog(database_url, redis) as (url, prefix):
            keys = Keys(prefix)
            conn = await asyncpg.connect(url)
            for kind, name in (("retailers", "retailers.csv"), ("stores", "stores.csv"),
                               ("products", "products.tsv")):
                await ingest_files(conn, redis, keys, kind, [feeds[name]], options=options)
            await build_index(conn, redis, keys, grace_s=0)
            started = time.perf_counter()
            report = await ingest_files(conn, redis, keys, "offers", [feeds[offers_file]], options=options,
                                        connect=lambda: asyncpg.connect(url))
            seconds = time.perf_counter() - started
            items = dict(await conn.fetch("SELECT item_id, gtin FROM retailer_items"))
            await conn.close()
    finally:
        await redis.aclose()
    return {"rows": report.rows_read, "loaded": report.rows_loaded, "rejected": report.rows_rejected,
            "seconds": seconds, "parse_seconds": parse_only(feeds, offers_file, items)}


def parse_only(feeds: dict[str, Path], offers_file: str, items: dict[str, str]) -> float:
    """Seconds to read and validate every row of the offers file, without PostgreSQL or Redis."""
    store_ids = {line.split(",")[1] for line in feeds["stores.csv"].read_text().splitlines()[1:]}
    validate = offer_validator({RETAILER}, {RETAILER: store_ids})
    options = FeedOptions(retailer=RETAILER, as_of=AS_OF, items=items)
    started = time.perf_counter()
    with FeedReader(feeds[offers_file], "offers", options) as reader:
        for line, values, problem in reader:
            if problem is None:
                validate(line, values)
    return time.perf_counter() - started


async def bench(database_url: str, redis_url: str, offers: int, stores: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="nearcart-bench-") as tmp:
        feeds = write_feeds(Path(tmp), offers, stores)
        results: dict[str, Any] = {"offers": offers, "stores": stores, "load_before": os.getloadavg()[0]}
        for label, name in (("nearcart CSV", "offers.csv.gz"), ("Google inventory TSV", "inventory.tsv.gz")):
            results[label] = await load(database_url, redis_url, feeds, name)
            results[label]["file_mb"] = feeds[name].stat().st_size / 1e6
    return results


def table(r: dict[str, Any]) -> str:
    base = r["nearcart CSV"]
    lines = [
        f"{r['offers']:,} offers of one retailer in {r['stores']:,} stores; load average {r['load_before']:.1f}"
        f" before, {os.cpu_count()} cores",
        "",
        "| format (gzipped) | file | rows/s end to end | vs. CSV | read + validate rows/s | vs. CSV | loaded |",
        "|---|---|---|---|---|---|---|",
    ]
    for label in ("nearcart CSV", "Google inventory TSV"):
        run = r[label]
        rate, parse = run["rows"] / run["seconds"], run["rows"] / run["parse_seconds"]
        lines.append(
            f"| {label} | {run['file_mb']:.1f} MB | {rate:,.0f} | {rate / (base['rows'] / base['seconds']):.2f}x"
            f" | {parse:,.0f} | {parse / (base['rows'] / base['parse_seconds']):.2f}x | {run['loaded']:,} |"
        )
    return "\n".join(lines)


def main() -> None:
    args = bench_parser(__doc__, offers=200_000, stores=2000).parse_args()
    results = on_services(lambda database_url, redis_url: bench(database_url, redis_url, args.offers, args.stores))
    print(json.dumps(results, indent=2) if args.json else table(results))


if __name__ == "__main__":
    main()
