"""How long a price change takes to reach shoppers: from a retailer's feed row to `/v1/offers` answers.

    .venv/bin/python -m loadtest.freshness [--repeat 10] [--workers 1] [--json]

A `nearcart serve` on the demo catalog is polled without pause at one store's
position (so its micro-cache stays warm, as under real traffic) while a one-row
offers feed changing that store's price goes through `cache.ingest.ingest_files`,
the path `nearcart ingest` takes. Printed per run: the ingest call, the first answer
showing the new price, and the moment after which no answer shows the old one (with
several workers, each has its own micro-cache). Target: under 1 s; exit 1 when missed.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import redis.asyncio as aioredis

from cache.ingest import ingest_files
from cache.keys import Keys, bits_to_modes
from edge_api.settings import Settings
from loadtest.stack import demo_settings, serve_nearcart

TARGET_S = 1.0
# Polling goes on this long after the new price first shows, to catch a worker still serving the old one.
SETTLE_S = 1.5
POLL_INTERVAL_S = 0.005
OFFER_COLUMNS = ("retailer_id", "store_id", "gtin", "price", "currency", "quantity", "modes", "updated_at")


class StoreOffer(msgspec.Struct):
    retailer_id: str
    store_id: str
    gtin: str
    price_cents: int
    currency: str
    quantity: int
    modes: str
    lat: float
    lon: float


class Run(msgspec.Struct):
    price: str
    ingest_s: float
    first_seen_s: float
    all_seen_s: float


async def pick_offer(conn: asyncpg.Connection, seed: int = 5) -> StoreOffer:
    rows = await conn.fetch(
        "SELECT o.retailer_id, o.store_id, o.gtin, o.price, o.currency, o.quantity, o.modes, s.lat, s.lon "
        "FROM offers o JOIN stores s USING (retailer_id, store_id) "
        "WHERE o.quantity > 3 ORDER BY o.retailer_id, o.store_id, o.gtin LIMIT 500")
    if not rows:
        raise RuntimeError("no in-stock store offer in the catalog")
    row = random.Random(seed).choice(rows)
    return StoreOffer(retailer_id=row["retailer_id"], store_id=row["store_id"], gtin=row["gtin"].strip(),
                      price_cents=int(row["price"] * 100), currency=row["currency"], quantity=row["quantity"],
                      modes="|".join(bits_to_modes(row["modes"])), lat=row["lat"], lon=row["lon"])


class Watcher:
    """Polls the offers answer at the store; remembers when each price was seen."""

    def __init__(self, client: httpx.AsyncClient, offer: StoreOffer) -> None:
        self.client = client
        self.offer = offer
        self.params = {"gtin": offer.gtin, "lat": str(offer.lat), "lon": str(offer.lon), "radius_km": "1",
                       "limit": "50", "modes": "in_store,click_collect"}
        self.seen: list[tuple[float, str | None]] = []
        self.errors = 0

    async def run(self) -> None:
        while True:
            answer = await self.client.get("/v1/offers", params=self.params)
            if answer.status_code == 200:
                self.seen.append((time.perf_counter(), self.price_in(answer.json())))
            else:
                self.errors += 1
            await asyncio.sleep(POLL_INTERVAL_S)

    def price_in(self, body: dict[str, Any]) -> str | None:
        for offer in body.get("offers", []):
            store = offer.get("store") or {}
            if store.get("id") == self.offer.store_id and offer["retailer"]["id"] == self.offer.retailer_id:
                return str(offer["price"]["amount"])
        return None

    async def wait_for(self, price: str, since: float, timeout_s: float) -> tuple[float, float]:
        """(first answer with `price`, first answer after the last one without it), as seconds after `since`."""
        deadline = time.perf_counter() + timeout_s
        first = None
        while time.perf_counter() < deadline:
            if first is None:
                first = next((t for t, p in self.seen if t >= since and p == price), None)
                if first is not None:
                    deadline = min(deadline, time.perf_counter() + SETTLE_S)
            await asyncio.sleep(0.01)
        if first is None:
            raise TimeoutError(f"price {price} not seen within {timeout_s} s")
        stale = [t for t, p in self.seen if t >= since and p != price]
        settled = next((t for t, p in self.seen if t > max(stale, default=since) and p == price), None)
        # The old price still showing at the end: it never settled, as bad as a timeout.
        return first - since, (settled - since) if settled is not None else timeout_s


def write_feed(directory: Path, offer: StoreOffer, price: str) -> Path:
    path = directory / f"offer-{time.monotonic_ns()}.csv"
    with path.open("w", newline="") as feed:
        writer = csv.writer(feed)
        writer.writerow(OFFER_COLUMNS)
        writer.writerow([offer.retailer_id, offer.store_id, offer.gtin, price, offer.currency, offer.quantity,
                         offer.modes, datetime.now(UTC).isoformat()])
    return path


async def measure(settings: Settings, base_url: str, repeat: int) -> list[Run]:
    keys = Keys(settings.redis_prefix)
    redis = aioredis.Redis.from_url(settings.redis_url)
    conn = await asyncpg.connect(settings.database_url)
    runs: list[Run] = []
    try:
        offer = await pick_offer(conn)
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
            watcher = Watcher(client, offer)
            polling = asyncio.create_task(watcher.run())
            try:
                with tempfile.TemporaryDirectory(prefix="nearcart-fresh-") as tmp:
                    for i in range(repeat):
                        # A random phase against the micro-cache's expiry, as for any real update.
                        await asyncio.sleep(random.uniform(0.3, 0.8))
                        cents = offer.price_cents + 7 * (i + 1)
                        price = f"{cents // 100}.{cents % 100:02d}"
                        feed = write_feed(Path(tmp), offer, price)
                        started = time.perf_counter()
                        report = await ingest_files(conn, redis, keys, "offers", [feed])
                        ingest_s = time.perf_counter() - started
                        if report.rows_loaded != 1:
                            raise RuntimeError(f"the update was not loaded: {report.summary()}")
                        first, settled = await watcher.wait_for(price, started, timeout_s=10)
                        runs.append(Run(price=price, ingest_s=ingest_s, first_seen_s=first, all_seen_s=settled))
                        print(f"run {i + 1}: ingest {ingest_s * 1000:.0f} ms, first answer {first * 1000:.0f} ms, "
                              f"every answer {settled * 1000:.0f} ms", file=sys.stderr, flush=True)
            finally:
                polling.cancel()
    finally:
        await conn.close()
        await redis.aclose()
    return runs


def summary(runs: list[Run], workers: int, ttl_s: float, live_ttl_s: float) -> str:
    def line(label: str, values: list[float]) -> str:
        return f"  {label:<34} median {statistics.median(values) * 1000:5.0f} ms   max {max(values) * 1000:5.0f} ms"

    worst = max(r.all_seen_s for r in runs)
    verdict = "met" if worst < TARGET_S else "MISSED"
    return "\n".join([
        f"offer update -> /v1/offers, {len(runs)} runs, {workers} worker(s), answers kept up to {live_ttl_s:g} s "
        f"while the change feed is followed ({ttl_s:g} s otherwise):",
        line("ingest_files (one-row feed)", [r.ingest_s for r in runs]),
        line("first answer with the new price", [r.first_seen_s for r in runs]),
        line("every answer with the new price", [r.all_seen_s for r in runs]),
        f"  target < {TARGET_S:g} s from ingest start: {verdict}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.freshness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with demo_settings() as settings, serve_nearcart(settings, workers=args.workers) as url:
        runs = asyncio.run(measure(settings, url, args.repeat))
    if args.json:
        print(msgspec.json.encode({"workers": args.workers, "micro_cache_ttl_s": settings.micro_cache_ttl_s,
                                   "micro_cache_live_ttl_s": settings.micro_cache_live_ttl_s,
                                   "target_s": TARGET_S, "runs": runs}).decode())
    else:
        print(summary(runs, args.workers, settings.micro_cache_ttl_s, settings.micro_cache_live_ttl_s))
    return 0 if max(r.all_seen_s for r in runs) < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
