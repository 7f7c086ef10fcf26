"""Trial: widget events sent while Redis is down are kept by the worker and all counted once it returns.

    python -m loadtest.redis_outage_events [--before-s 3] [--outage-s 10] [--after-s 3] [--batch 10]

Runs `nearcart serve` (this checkout) on a Redis of its own (a redis-server on a free loopback
port, never the shared one) and a scratch database; posts batches of `open` beacons before,
during and after an outage (Redis stopped, then restarted with its append-only file, or empty
with --empty), one campaign per phase, and
prints per phase: events sent, answers by status, events counted in `stats_daily`, and how
long after Redis returned every event was counted. Exit status 1 if any event sent during or
after the outage was lost (or, with its data kept, any at all).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import asyncpg
import httpx
import msgspec

from cache import db as catalog_db
from cache.embedded import EmbeddedRedis, free_port, start_redis
from loadtest.stack import _with_project_path, running, scratch_settings, settings_env

PHASES = ("before", "during", "after")


def post_for(client: httpx.Client, seconds: float, campaign: str, batch: int) -> tuple[int, Counter[int], list[float]]:
    """Post batches of `open` beacons for `seconds`; (events sent, statuses, latencies in ms)."""
    sent, statuses, latencies = 0, Counter[int](), []
    body = [{"type": "open", "campaign": campaign, "gtin": "3017620422003", "ts": 0} for _ in range(batch)]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for event in body:
            event["ts"] = int(time.time() * 1000)
        started = time.perf_counter()
        answer = client.post("/v1/events", content=msgspec.json.encode(body), headers={"content-type": "text/plain"})
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[answer.status_code] += 1
        sent += batch
    return sent, statuses, latencies


async def counted(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT campaign, sum(opens)::bigint AS n FROM stats_daily GROUP BY campaign")
        return {row["campaign"]: row["n"] for row in rows}
    finally:
        await conn.close()


async def migrate(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await catalog_db.migrate(conn)
    finally:
        await conn.close()


def trial(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="nearcart-outage-") as tmp, scratch_settings(
        events_per_minute=10**9, log_level="warning"
    ) as base:
        redis_dir, port = Path(tmp) / "redis", free_port()
        # With an append-only file unless --empty: Redis then comes back with what it held.
        own: EmbeddedRedis = start_redis(redis_dir, port, persistent=not args.empty)
        settings = msgspec.structs.replace(base, redis_url=own.url)
        asyncio.run(migrate(settings.database_url))
        server_port = free_port()
        command = [sys.executable, "-c", "from edge_api.cli import main; main()", "serve", "--host", "127.0.0.1",
                   "--port", str(server_port)]
        sent: dict[str, int] = {}
        statuses: dict[str, Counter[int]] = {}
        latencies: dict[str, list[float]] = {}
        try:
            with running(command, _with_project_path(settings_env(settings)), server_port, "/healthz") as url, \
                    httpx.Client(base_url=url, timeout=10) as client:
                durations = {"before": args.before_s, "during": args.outage_s, "after": args.after_s}
                for phase in PHASES:
                    if phase == "during":
                        own.stop()
                    sent[phase], statuses[phase], latencies[phase] = post_for(
                        client, durations[phase], phase, args.batch)
                    if phase == "during":
                        own = start_redis(redis_dir, port, persistent=not args.empty)
                        returned = time.monotonic()
                deadline = returned + args.wait_s
                found = asyncio.run(counted(settings.database_url))
                awaited = PHASES[1:] if args.empty else PHASES
                while any(found.get(p, 0) < sent[p] for p in awaited) and time.monotonic() < deadline:
                    time.sleep(0.25)
                    found = asyncio.run(counted(settings.database_url))
                all_counted_s = time.monotonic() - returned
        finally:
            own.stop()
    comeback = "empty (events not yet counted before it stopped are gone with it)" if args.empty else "with its data"
    print(f"Redis stopped for {args.outage_s:.0f} s, restarted {comeback}; batches of {args.batch} events\n")
    print("| phase | events sent | answers | p50 ms | p99 ms | events counted | lost |")
    print("|---|---|---|---|---|---|---|")
    for phase in PHASES:
        answers = ", ".join(f"{n} x {status}" for status, n in sorted(statuses[phase].items()))
        times = sorted(latencies[phase])
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(f"| {phase} Redis outage | {sent[phase]:,} | {answers} | {statistics.median(times):.1f} | {p99:.1f}"
              f" | {found.get(phase, 0):,} | {sent[phase] - found.get(phase, 0):,} |")
    # Redis restarted empty takes with it what was in the stream and not yet counted: not the worker's to keep.
    lost = sum(sent[p] - found.get(p, 0) for p in PHASES if not (args.empty and p == "before"))
    print(f"\nevery event counted {all_counted_s:.1f} s after Redis returned" if not lost
          else f"\n{lost} events NOT counted within {args.wait_s:.0f} s of Redis returning")
    return 1 if lost else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before-s", type=float, default=3.0)
    parser.add_argument("--outage-s", type=float, default=10.0)
    parser.add_argument("--after-s", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=10, help="events per POST (the widget sends up to 50)")
    parser.add_argument("--empty", action="store_true", help="Redis comes back empty (no append-only file)")
    parser.add_argument("--wait-s", type=float, default=120.0, help="how long to wait for the counts afterwards")
    return trial(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
