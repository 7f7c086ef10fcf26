"""Trial: PostgreSQL stopped under load and started again; offers keep coming from Redis, nothing says "nowhere".

    .venv/bin/python -m loadtest.postgres_outage [--workers 2] [--down-s 10]

Starts a PostgreSQL of its own (pgserver's binaries, a scratch data directory, a Unix socket:
never the shared server) and a redis-server of its own on a free loopback port, loads the
demo catalog, and runs `nearcart serve` on them. Shoppers ask for offers at places that have
some, with and without the demo campaign (whose rules are read from PostgreSQL), half at the
same places and half at new positions, while beacons post `open` events. PostgreSQL is then
stopped in "immediate" mode (what a crash leaves: no checkpoint, recovery at the next start)
for `--down-s`, and started again.

Prints, per phase: answers (200 full / partial / empty-but-wrong / 503), latencies; the
seconds from PostgreSQL back to /readyz 200 and to the last answer that was not full; events
sent and counted per phase. Exit status 1 on any empty-but-wrong answer or when full answers
did not come back within `--heal-timeout-s`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import httpx
from pgserver import pg_ctl  # type: ignore[attr-defined]  # made at import: mypy cannot see it

from cache.embedded import EmbeddedPostgres, free_port, start_postgres, start_redis
from loadtest.outage_load import SHOPPERS, Trial, baselines, outage, outage_arguments, pick_places, report, wait_counted
from loadtest.stack import demo_settings, serve_nearcart


def stop_postgres(postgres: EmbeddedPostgres) -> None:
    """Stop it as a crash would: no shutdown checkpoint, so the next start replays the WAL."""
    # As pgserver's own system user when we are root (PostgreSQL refuses to run as root).
    user = postgres.server.system_user  # type: ignore[attr-defined]
    pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=postgres.pgdata, user=user)


async def run_load(url: str, database_url: str, postgres: EmbeddedPostgres, args: argparse.Namespace) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        places = await pick_places(database_url, count=8)
        trial = Trial(await baselines(client, places + [place._replace(campaign="demo") for place in places]))
        recovery = await outage(client, trial, ("postgres-down", "postgres-back"), lambda: stop_postgres(postgres),
                                postgres.server.ensure_postgres_running, args)  # type: ignore[attr-defined]
    counted = await wait_counted(database_url, trial.events_sent, timeout_s=30.0)
    with_campaign = sum(1 for place in trial.truth if place.campaign)
    title = (f"nearcart serve --workers {args.workers} on the demo catalog, {len(trial.truth)} places with offers"
             f" ({with_campaign} asked with the demo campaign), {SHOPPERS} shoppers; PostgreSQL stopped (immediate)"
             f" for {args.down_s:.0f} s, then started again")
    return report(trial, title, "PostgreSQL", recovery, counted)


def trial(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="nearcart-postgres-outage-") as tmp:
        postgres = start_postgres(Path(tmp) / "postgres")
        redis = start_redis(Path(tmp) / "redis", free_port(), persistent=False)
        try:
            with demo_settings((redis.url, postgres.url()), events_per_minute=10**9) as settings, \
                    serve_nearcart(settings, workers=args.workers) as url:
                return asyncio.run(run_load(url, settings.database_url, postgres, args))
        finally:
            redis.stop()
            postgres.stop()


def main(argv: list[str] | None = None) -> int:
    assert __doc__
    return trial(outage_arguments(__doc__, down_s=10.0, heal_timeout_s=40.0).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
