"""Trial: Redis killed under load and restarted EMPTY; the index heals itself, no answer says "nowhere".

    .venv/bin/python -m loadtest.redis_outage [--workers 2] [--down-s 5] [--heal-timeout-s 60]

Starts a redis-server of its own on a free loopback port (never the shared one), loads the demo
catalog into a scratch database and that Redis, and runs `nearcart serve` on them. Shoppers ask
for offers at places that have some (half at the same places, answers the workers keep; half
at new positions, answers that must come from the index) while beacons post `open` events.
Then Redis is killed (SIGKILL), restarted empty after `--down-s`, and nobody runs
`nearcart index build`: the workers must rebuild the index themselves.

Prints, per phase: answers (200 full / partial / empty-but-wrong / 503), latencies; the seconds
from Redis back to the first full answer at a new position and to the last answer that was not
full; when /readyz said ready again; events sent and counted per phase. Exit status 1 on any
empty-but-wrong answer or when full answers did not come back within `--heal-timeout-s`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import httpx

from cache.embedded import EmbeddedRedis, free_port, start_redis
from loadtest.outage_load import SHOPPERS, Trial, baselines, outage, outage_arguments, pick_places, report, wait_counted
from loadtest.stack import demo_settings, serve_nearcart


async def run_load(url: str, database_url: str, redis_dir: Path, redis: list[EmbeddedRedis],
                   args: argparse.Namespace) -> int:
    def kill() -> None:
        redis[0].process.kill()
        redis[0].process.wait()

    def start_empty() -> None:
        redis[0] = start_redis(redis_dir, redis[0].port, persistent=False)

    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        trial = Trial(await baselines(client, await pick_places(database_url)))
        recovery = await outage(client, trial, ("redis-down", "redis-back-empty"), kill, start_empty, args)
    counted = await wait_counted(database_url, trial.events_sent, timeout_s=30.0)
    title = (f"nearcart serve --workers {args.workers} on the demo catalog, {len(trial.truth)} places with offers,"
             f" {SHOPPERS} shoppers; Redis killed for {args.down_s:.0f} s, restarted EMPTY, nobody ran"
             " `nearcart index build`")
    return report(trial, title, "Redis (empty)", recovery, counted)


def trial(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="nearcart-redis-outage-") as tmp:
        redis_dir = Path(tmp) / "redis"
        redis = [start_redis(redis_dir, free_port(), persistent=False)]
        try:
            with demo_settings(redis_url=redis[0].url, events_per_minute=10**9) as settings, \
                    serve_nearcart(settings, workers=args.workers) as url:
                return asyncio.run(run_load(url, settings.database_url, redis_dir, redis, args))
        finally:
            redis[0].stop()


def main(argv: list[str] | None = None) -> int:
    assert __doc__
    return trial(outage_arguments(__doc__, down_s=5.0, heal_timeout_s=60.0).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
