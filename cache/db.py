"""PostgreSQL access: the asyncpg pool and versioned schema migrations."""

from __future__ import annotations

import re
from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import asyncpg

MIGRATION_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")
# Any constant works; it only has to be the same for every `nearcart db migrate`.
MIGRATION_LOCK = 0x6E6361_01
# What a call to PostgreSQL raises when the database is down, slow or refuses: every caller that
# answers "briefly unavailable" (or retries) catches exactly these, named once here.
# (TimeoutError, which asyncpg raises for a slow call, is an OSError.)
DATABASE_UNAVAILABLE = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


def with_database(url: str, name: str) -> str:
    """The same server URL, pointing at database `name`."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration shipped in cache/migrations, in order."""
    found = []
    for entry in resources.files("cache.migrations").iterdir():
        match = MIGRATION_NAME.fullmatch(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations this database has not seen yet; return their names."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for version, name, sql in migrations():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
            applied.append(name)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


async def create_pool(dsn: str, timeout_s: float = 2.0, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, timeout=timeout_s, command_timeout=max(timeout_s, 30.0)
    )
    assert pool is not None
    return pool
