"""PostgreSQL rows as the back office's frozen dataclasses: each SELECT names its dataclass's fields."""

from __future__ import annotations

from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")


async def fetch_records(db: asyncpg.Pool | asyncpg.Connection, record: type[T], query: str, *args: Any) -> list[T]:
    """Every row of `query` as a `record`, its columns passed by name (so their order in the SELECT is free)."""
    return [record(**dict(row)) for row in await db.fetch(query, *args)]
