"""The quality check on a network of 50 retailers with planted faults: is every fault found, and nothing else?

    python -m benchmarks.quality_network [--retailers 50] [--seed 7] [--json]

Builds the network in a scratch database (`NEARCART_DATABASE_URL` / `NEARCART_REDIS_URL`, else
this machine's servers, else embedded ones) with one fake retailer web server on loopback for
the basket links. Each fault is planted in a few retailers, some of them in two: a stale offers
feed (its last success 30 h ago), unconfirmed offers (3 days old), a feed with 30 % of its rows
rejected, price outliers (10x the market), dead basket links (404, a stall, a redirect to another
host), a Business Profile store sheet with a store lacking coordinates (placed approximately).
Every healthy retailer carries one near miss instead (a feed 25 h old, offers 47 h old, 1 row in
31 rejected, a price 2.5x the median, a basket link that redirects within its own host), so
"nothing healthy flagged" means something. Stores and offers go through `ingest_files` as each
retailer's feeds; only a feed's age is planted, by dating its last success back.
Prints one row per retailer (planted, found) and the check's duration.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import redis.asyncio as aioredis

from benchmarks.fake_retailer import FakeRetailer, stall, status
from benchmarks.ingest import on_services, scratch_catalog
from cache.formats.base import FeedOptions
from cache.ingest import ingest_files
from cache.keys import Keys
from cache.quality import LINKS_ALERT, REJECTED_ALERT, STALE_AFTER_S, RetailerQuality
from edge_api.quality_check import check_quality
from edge_api.settings import Settings, load_settings

FAULTS = ("stale feed", "unconfirmed", "rejected rows", "price outliers", "dead links", "approximate stores")
PLANTED_PER_FAULT = 6
GTINS = [f"{body:012d}" for body in range(400000000010, 400000000110, 10)]
STORES = ("north", "south", "centre")
_OFFERS = "retailer_id,store_id,gtin,price,currency,quantity,modes,updated_at\n"
_STORES = "retailer_id,store_id,name,address,postal_code,city,country,lat,lon\n"
_PROFILE = "Store code,Business name,Address line 1,Postal code,Locality,Country / Region,Latitude,Longitude\n"


def gtin13(body: str) -> str:
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def plan(retailers: int, seed: int) -> dict[str, set[str]]:
    """Which faults each retailer gets: each fault in PLANTED_PER_FAULT retailers, drawn at random."""
    rng = random.Random(seed)
    names = [f"r{n:02d}" for n in range(retailers)]
    planted: dict[str, set[str]] = {name: set() for name in names}
    for fault in FAULTS:
        for name in rng.sample(names, min(PLANTED_PER_FAULT, retailers)):
            planted[name].add(fault)
    return planted


def detected(quality: RetailerQuality) -> set[str]:
    """The faults the check's figures show, at the thresholds the alert rules and back office use."""
    found = set()
    if any(f.age_s > STALE_AFTER_S for f in quality.feeds):
        found.add("stale feed")
    if quality.offers_unconfirmed:
        found.add("unconfirmed")
    if any(f.rejected_ratio > REJECTED_ALERT for f in quality.feeds):
        found.add("rejected rows")
    if quality.price_outliers:
        found.add("price outliers")
    if quality.links_failing_ratio > LINKS_ALERT:
        found.add("dead links")
    if quality.stores_approximate:
        found.add("approximate stores")
    return found


async def plant(
    conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, shop: FakeRetailer, workdir: Path,
    planted: dict[str, set[str]],
) -> None:
    """Write the network: retailers, then each one's stores and offers feeds through the ingest."""
    shop.serve("/ok/", status(200))
    shop.serve("/login/", status(302, "/account/login"))
    shop.serve("/gone/", status(404))
    shop.serve("/slow/", stall(3.0, status(200)))
    shop.serve("/moved/", status(301, "https://parked.example/"))
    dead = ("gone", "slow", "moved")
    now = datetime.now(UTC)
    for n, (name, faults) in enumerate(planted.items()):
        near_miss = n % 5 if not faults else -1
        path = dead[n % 3] if "dead links" in faults else "login" if near_miss == 4 else "ok"
        await conn.execute(
            "INSERT INTO retailers (retailer_id, name, cart_url_template) VALUES ($1, $2, $3)",
            name, f"Retailer {name}", f"{shop.base}/{path}/{name}/basket?add={{gtin}}&store={{store_id}}",
        )
        places = [f"{48.80 + i * 0.03 + n * 0.001:.4f}" for i in range(len(STORES))]
        stores = _STORES + "".join(
            f"{name},{store},{name} {store},1 rue {store},7500{i + 1},Paris,FR,{places[i]},2.35\n"
            for i, store in enumerate(STORES)
        )
        if "approximate stores" in faults:
            # A Google Business Profile sheet, one store without coordinates: placed at its postal code's centre.
            stores = _PROFILE + "".join(
                f"{store},{name} {store},1 rue {store},7500{i + 1},Paris,FR,"
                + (",\n" if i == 1 else f"{places[i]},2.35\n")
                for i, store in enumerate(STORES)
            )
        offers, bad = [], 0
        for g, body in enumerate(GTINS):
            base = 2.0 + g * 0.5
            for s, store in enumerate(STORES):
                price = base * (1 + ((n * 7 + g * 3 + s) % 11 - 5) / 100)  # within 5 % of the market
                age = timedelta(hours=1)
                if g == 0 and s == 0:
                    price *= 10 if "price outliers" in faults else 2.5 if near_miss == 3 else 1
                    if "unconfirmed" in faults or near_miss == 1:
                        age = timedelta(days=3) if "unconfirmed" in faults else timedelta(hours=47)
                offers.append(f"{name},{store},{gtin13(body)},{price:.2f},EUR,5,in_store,{(now - age).isoformat()}\n")
        if "rejected rows" in faults:
            bad = len(offers) * 3 // 7  # 30 % of all rows
        elif near_miss == 2:
            bad = 1
        offers += [f"{name},{STORES[0]},1234567890123,2.00,EUR,5,in_store,{now.isoformat()}\n"] * bad
        for kind, text in (("stores", stores), ("offers", _OFFERS + "".join(offers))):
            feed = workdir / f"{name}-{kind}.csv"
            feed.write_text(text, encoding="utf-8")
            await ingest_files(conn, redis, keys, kind, [feed], options=FeedOptions(retailer=name))
        hours = 30 if "stale feed" in faults else 25 if near_miss == 0 else 0
        if hours:
            # Time is the one thing a test cannot wait for: the offers feed last succeeded `hours` ago.
            await conn.execute(
                "UPDATE retailer_feed_health SET last_success_at = now() - $2 * interval '1 hour', first_seen_at ="
                " now() - interval '40 hours' WHERE retailer_id = $1 AND kind = 'offers'", name, float(hours),
            )


def network_settings(settings: Settings) -> Settings:
    """Loopback links allowed (the fake retailer is plain http), a short link timeout for the stalls."""
    return msgspec.structs.replace(settings, allow_http_loopback=True, link_timeout_s=0.5, links_per_retailer=10)


async def run_network(
    conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, settings: Settings, retailers: int, seed: int
) -> dict[str, Any]:
    planted = plan(retailers, seed)
    with FakeRetailer() as shop, tempfile.TemporaryDirectory(prefix="nearcart-network-") as tmp:
        started = time.perf_counter()
        await plant(conn, redis, keys, shop, Path(tmp), planted)
        planted_s = time.perf_counter() - started
        started = time.perf_counter()
        figures = await check_quality(conn, redis, keys, network_settings(settings))
        check_s = time.perf_counter() - started
    rows = [
        {"retailer": q.retailer_id, "planted": sorted(planted[q.retailer_id]), "found": sorted(detected(q))}
        for q in figures
    ]
    return {
        "retailers": retailers, "rows": rows, "plant_s": planted_s, "check_s": check_s,
        "faults_planted": sum(len(r["planted"]) for r in rows),
        "faults_found": sum(len(set(r["planted"]) & set(r["found"])) for r in rows),
        "healthy_flagged": sum(1 for r in rows if not r["planted"] and r["found"]),
        "mismatches": [r["retailer"] for r in rows if r["planted"] != r["found"]],
    }


def table(result: dict[str, Any]) -> str:
    lines = ["| retailer | planted | found | ok |", "|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['retailer']} | {', '.join(row['planted']) or '-'} | {', '.join(row['found']) or '-'} |"
                     f" {'yes' if row['planted'] == row['found'] else 'NO'} |")
    lines += [
        "",
        f"{result['retailers']} retailers: {result['faults_found']} of {result['faults_planted']} planted faults found,"
        f" {result['healthy_flagged']} healthy retailer(s) flagged, {len(result['mismatches'])} mismatch(es).",
        f"network written in {result['plant_s']:.1f} s; quality check in {result['check_s']:.1f} s",
    ]
    return "\n".join(lines)


async def _scratch(database_url: str, redis_url: str, retailers: int, seed: int) -> dict[str, Any]:
    redis = aioredis.Redis.from_url(redis_url)
    try:
        async with scratch_catalog(database_url, redis) as (scratch_url, prefix):
            settings = load_settings(environ={}, database_url=scratch_url, redis_url=redis_url, redis_prefix=prefix)
            conn = await asyncpg.connect(scratch_url)
            try:
                return await run_network(conn, redis, Keys(prefix), settings, retailers, seed)
            finally:
                await conn.close()
    finally:
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--retailers", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    result = on_services(lambda database_url, redis_url: _scratch(database_url, redis_url, args.retailers, args.seed))
    print(json.dumps(result, indent=2) if args.json else table(result))
    raise SystemExit(0 if not result["mismatches"] else 1)


if __name__ == "__main__":
    main()
