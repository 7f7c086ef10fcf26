"""`nearcart demo`: a whole working nearcart on one machine, from nothing.

Migrates the schema, writes the deterministic demo catalog, loads it through the
same ingest path retailers use, builds the index, stores the demo campaign and
serves the API, the widget and the demo brand page on 127.0.0.1. A restart with nothing changed
reuses the catalog already written and loaded; only the index is built again.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

import asyncpg
import redis.asyncio as aioredis

from cache import db as catalog_db
from cache.demo_catalog import DemoCatalog, write_demo_catalog
from cache.index import build_index
from cache.ingest import ingest_files
from cache.keys import Keys
from cache.redis_topology import primary_client
from edge_api.campaign_rules import load_campaign_file
from edge_api.campaign_store import store_campaign
from edge_api.demo_reuse import (
    DemoStamp,
    already_loaded,
    database_id,
    demo_inputs,
    forget,
    read_stamp,
    remember,
    reusable_catalog,
)
from edge_api.settings import Settings, data_path

DEMO_SEED = 42


async def prepare_demo(settings: Settings) -> str:
    """Load the demo catalog and campaign; return the campaign id.

    A restart reuses the catalog already written and loaded when nothing it follows from changed
    (`edge_api/demo_reuse.py`).
    """
    started = time.perf_counter()
    feeds = data_path(settings) / "demo-feeds"
    inputs = demo_inputs(DEMO_SEED)
    stamp = read_stamp(feeds)
    catalog = reusable_catalog(feeds, stamp, inputs)
    if catalog is None:
        forget(feeds)
        catalog = write_demo_catalog(feeds, DEMO_SEED)
    keys = Keys(settings.redis_prefix)
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with primary_client(settings) as redis:
            await catalog_db.migrate(conn)
            database = database_id(settings.database_url)
            if already_loaded(stamp, inputs, database, await _last_feed_run(conn)):
                print(f"catalog unchanged since the last start: already loaded (remove {feeds} to load it again)")
            else:
                forget(feeds)
                await _load(conn, redis, keys, catalog)
            remember(feeds, DemoStamp(inputs, catalog.gtins, database, await _last_feed_run(conn)))
            version = await build_index(conn, redis, keys, grace_s=0)
        campaign, errors = load_campaign_file(catalog.campaign)
        if campaign is None:
            raise RuntimeError(f"demo campaign is invalid: {errors}")
        await store_campaign(conn, campaign, settings.database_timeout_s)
    finally:
        await conn.close()
    print(f"index version {version} built; demo ready in {time.perf_counter() - started:.1f} s")
    return campaign.id


async def _load(conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, catalog: DemoCatalog) -> None:
    for kind, path in (("retailers", catalog.retailers), ("stores", catalog.stores), ("offers", catalog.offers)):
        report = await ingest_files(conn, redis, keys, kind, [path])
        print(f"{kind}: {report.rows_loaded} rows loaded, {len(report.rejects)} rejected")


async def _last_feed_run(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM feed_runs"))


def run_demo(settings: Settings, port: int = 8000, workers: int = 1) -> None:
    from edge_api.server import run_server

    # uvicorn re-raises SIGTERM once it has shut down; as SystemExit it lets `nearcart demo`
    # stop its embedded Redis and PostgreSQL instead of dying with them still running.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    campaign_id = asyncio.run(prepare_demo(settings))
    print(f"nearcart demo: http://127.0.0.1:{port}/demo/  (campaign {campaign_id!r}; Ctrl-C stops)", flush=True)
    run_server(settings, host="127.0.0.1", port=port, workers=workers)
