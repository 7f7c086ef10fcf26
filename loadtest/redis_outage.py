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
import time
from pathlib import Path

import httpx

from cache.embedded import EmbeddedRedis, free_port, start_redis
from loadtest.outage_load import SHOPPERS, Trial, baselines, pick_places, wait_counted
from loadtest.stack import demo_settings, serve_nearcart

# Full answers for this long in a row, after Redis returned, count as "healed".
STEADY_S = 2.0


async def until_ready(client: httpx.AsyncClient, since: float, timeout_s: float) -> float | None:
    """Seconds from `since` until /readyz answers 200, or None."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if (await client.get("/readyz")).status_code == 200:
                return time.monotonic() - since
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    return None


async def run_load(url: str, database_url: str, redis_dir: Path, redis: list[EmbeddedRedis],
                   args: argparse.Namespace) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        trial = Trial(await baselines(client, await pick_places(database_url)))
        load = [asyncio.create_task(trial.shopper(client, seed)) for seed in range(SHOPPERS)]
        load.append(asyncio.create_task(trial.beacons(client)))
        await asyncio.sleep(args.before_s)

        trial.enter("redis-down")
        redis[0].process.kill()
        redis[0].process.wait()
        await asyncio.sleep(args.down_s)

        # Started before the phase changes: answers computed while this call blocks count as "down".
        redis[0] = start_redis(redis_dir, redis[0].port, persistent=False)
        trial.enter("redis-back-empty")
        back = time.monotonic()
        ready = asyncio.create_task(until_ready(client, back, args.heal_timeout_s))
        for _ in range(int(args.heal_timeout_s * 10)):
            if trial.healed(back, STEADY_S):
                break
            await asyncio.sleep(0.1)
        healed = trial.healed(back, STEADY_S)

        trial.enter("after")
        await asyncio.sleep(args.after_s)
        trial.running = False
        await asyncio.gather(*load)
        ready_s = await ready
    counted = await wait_counted(database_url, trial.events_sent, timeout_s=20.0)

    first_full, last_not_full = trial.full_again_after(back)
    print(f"nearcart serve --workers {args.workers} on the demo catalog, {len(trial.truth)} places with offers,"
          f" {SHOPPERS} shoppers; Redis killed for {args.down_s:.0f} s, restarted EMPTY, nobody ran"
          " `nearcart index build`\n")
    trial.print_answers()
    print()
    print(f"Redis back (empty) -> first full answer at a new position: {_seconds(first_full)}")
    print(f"Redis back (empty) -> every answer full from:             {_seconds(last_not_full if healed else None)}")
    print(f"Redis back (empty) -> /readyz 200:                        {_seconds(ready_s)}")
    print()
    trial.print_events(counted)
    wrong = trial.empty_but_wrong()
    print(f"\nempty-but-wrong answers: {wrong}")
    return 1 if wrong or not healed else 0


def _seconds(value: float | None) -> str:
    return "never (within the timeout)" if value is None else f"{value:.1f} s"


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--before-s", type=float, default=4.0)
    parser.add_argument("--down-s", type=float, default=5.0)
    parser.add_argument("--after-s", type=float, default=3.0)
    parser.add_argument("--heal-timeout-s", type=float, default=60.0)
    return trial(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
