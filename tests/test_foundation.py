from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
import redis
import redis.asyncio as aioredis

from cache import db as catalog_db
from cache.embedded import start_redis
from edge_api.settings import SettingsError, load_settings


async def test_migrate_is_idempotent(db: asyncpg.Connection) -> None:
    assert await catalog_db.migrate(db) == []
    tables = {r["tablename"] for r in await db.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    assert {"retailers", "stores", "products", "offers", "campaigns", "feed_runs", "schema_migrations"} <= tables


async def test_redis_is_recent_enough_for_geosearch(redis: aioredis.Redis) -> None:
    major, minor = (int(p) for p in (await redis.info("server"))["redis_version"].split(".")[:2])
    assert (major, minor) >= (6, 2)


def test_settings_come_from_prefixed_environment() -> None:
    settings = load_settings(
        environ={"NEARCART_REDIS_URL": "redis://x:1/0", "NEARCART_TRUSTED_PROXIES": "10.0.0.0/8, ::1"}
    )
    assert settings.redis_url == "redis://x:1/0"
    assert settings.trusted_proxies == ("10.0.0.0/8", "::1")


def test_bad_setting_names_the_variable() -> None:
    try:
        load_settings(environ={"NEARCART_REDIS_TIMEOUT_S": "soon"})
    except SettingsError as exc:
        assert "NEARCART_REDIS_TIMEOUT_S" in str(exc)
    else:
        raise AssertionError("a non-numeric timeout was accepted")


def test_embedded_servers_start_under_a_relative_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`nearcart demo` on a fresh machine: NEARCART_DATA_DIR defaults to the relative `.nearcart`."""
    monkeypatch.chdir(tmp_path)
    server = start_redis(Path(".nearcart") / "redis")
    try:
        assert redis.Redis.from_url(server.url).ping()
    finally:
        server.stop()


def test_yes_no_setting_reads_the_usual_spellings() -> None:
    assert load_settings(environ={"NEARCART_AGGREGATE_EVENTS": "off"}).aggregate_events is False
    assert load_settings(environ={"NEARCART_AGGREGATE_EVENTS": "True"}).aggregate_events is True
    with pytest.raises(SettingsError, match="NEARCART_AGGREGATE_EVENTS"):
        load_settings(environ={"NEARCART_AGGREGATE_EVENTS": "maybe"})


def test_redis_topology_settings_are_lists_and_a_sentinel_needs_its_master_name() -> None:
    settings = load_settings(environ={
        "NEARCART_REDIS_REPLICA_URLS": "redis://r1:6379/0, redis://r2:6379/0",
        "NEARCART_REDIS_SENTINELS": "s1:26379,s2:26379", "NEARCART_REDIS_SENTINEL_MASTER": "nearcart",
    })
    assert settings.redis_replica_urls == ("redis://r1:6379/0", "redis://r2:6379/0")
    assert settings.redis_sentinels == ("s1:26379", "s2:26379")
    with pytest.raises(SettingsError, match="NEARCART_REDIS_SENTINEL_MASTER"):
        load_settings(environ={"NEARCART_REDIS_SENTINELS": "s1:26379"})
    with pytest.raises(SettingsError, match="NEARCART_REDIS_SENTINELS: 's1' is not host:port"):
        load_settings(environ={"NEARCART_REDIS_SENTINELS": "s1", "NEARCART_REDIS_SENTINEL_MASTER": "nearcart"})
