"""A restarted demo serves at once when nothing changed, and loads everything again when something did."""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from starlette.testclient import TestClient

from cache.demo_catalog import NUTELLA
from cache.ingest import ingest_files
from cache.keys import Keys
from edge_api.app import create_app
from edge_api.demo import prepare_demo
from edge_api.demo_reuse import demo_inputs
from edge_api.settings import Settings, data_path
from loadtest.stack import scratch_settings


@pytest.fixture(scope="module")
def demo(services: tuple[str, str]) -> Iterator[Settings]:
    """One demo for the module, loaded once: each test leaves it loaded and stamped, as a start does."""
    with scratch_settings(services) as settings:
        restart(settings)
        yield settings


def restart(settings: Settings) -> str:
    """What `nearcart demo` does on a restart (its Redis kept nothing); returns what it printed."""

    async def emptied_redis_then_prepare() -> None:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            async for key in client.scan_iter(match=settings.redis_prefix + "*", count=1000):
                await client.unlink(key)
        finally:
            await client.aclose()
        await prepare_demo(settings)

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        asyncio.run(emptied_redis_then_prepare())
    return printed.getvalue()


def feed_runs(settings: Settings) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM feed_runs"))
        finally:
            await conn.close()

    return asyncio.run(count())


def offers_file(settings: Settings) -> Path:
    return data_path(settings) / "demo-feeds" / "offers.csv.gz"


def assert_demo_answers(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        answer = client.get("/v1/offers", params={"gtin": NUTELLA, "campaign": "demo", "lat": "48.85", "lon": "2.35"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["offers"], "the restarted demo offers nothing for the demo's own product"


def test_a_restart_with_nothing_changed_loads_nothing_and_still_answers(demo: Settings) -> None:
    runs, written = feed_runs(demo), offers_file(demo).stat().st_mtime_ns
    printed = restart(demo)
    assert "already loaded" in printed and "rows loaded" not in printed
    assert feed_runs(demo) == runs
    assert offers_file(demo).stat().st_mtime_ns == written, "the catalog was written again"
    assert_demo_answers(demo)


def test_a_feed_loaded_since_makes_the_restart_load_the_demo_again(demo: Settings) -> None:
    async def load_a_feed() -> None:
        conn = await asyncpg.connect(demo.database_url)
        redis = aioredis.Redis.from_url(demo.redis_url)
        try:
            retailers = data_path(demo) / "demo-feeds" / "retailers.jsonl"
            await ingest_files(conn, redis, Keys(demo.redis_prefix), "retailers", [retailers])
        finally:
            await conn.close()
            await redis.aclose()

    asyncio.run(load_a_feed())
    runs = feed_runs(demo)
    assert "rows loaded" in restart(demo)
    assert feed_runs(demo) == runs + 3  # retailers, stores, offers
    assert "already loaded" in restart(demo)


def test_a_wiped_data_dir_writes_and_loads_the_demo_again(demo: Settings) -> None:
    shutil.rmtree(data_path(demo))
    runs = feed_runs(demo)
    printed = restart(demo)
    assert "rows loaded" in printed and "already loaded" not in printed
    assert offers_file(demo).is_file()
    assert feed_runs(demo) == runs + 3
    assert_demo_answers(demo)


def test_the_demo_inputs_change_with_any_source_or_data_file_but_not_with_the_build(tmp_path: Path) -> None:
    root = tmp_path / "geo"
    (root / "data").mkdir(parents=True)
    (root / "towns.py").write_text("POPULATION = 5000\n")
    (root / "data" / "postal_codes.tsv").write_text("75001\t48.86\t2.34\n")
    first = demo_inputs(42, [root])

    (root / "towns.py").write_text("POPULATION = 15000\n")
    assert demo_inputs(42, [root]) != first
    (root / "towns.py").write_text("POPULATION = 5000\n")
    assert demo_inputs(42, [root]) == first

    (root / "data" / "postal_codes.tsv").write_text("75002\t48.87\t2.34\n")
    assert demo_inputs(42, [root]) != first
    (root / "data" / "postal_codes.tsv").write_text("75001\t48.86\t2.34\n")

    # Cython's output beside the sources follows from them: building does not make the demo load again.
    (root / "towns.c").write_text("/* generated */\n")
    (root / "towns.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    assert demo_inputs(42, [root]) == first
    assert demo_inputs(7, [root]) != first
