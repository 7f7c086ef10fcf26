"""A whole nearcart to measure: scratch services, the demo catalog, `nearcart serve` as a child process.

Benchmarks, the freshness probe, the widget timer and the Locust smoke test all
need the same thing: real Redis and PostgreSQL (the local ones, else the embedded
ones), a database and key prefix of their own that are gone afterwards, the demo
catalog loaded through the ingest path, and the server run exactly as an SRE runs
it. Measuring an in-process app would measure something nobody deploys.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from cache.db import with_database
from cache.embedded import free_port, local_or_embedded
from edge_api.settings import PREFIX, Settings, load_settings

READY_TIMEOUT_S = 60.0


async def _create_database(maintenance_url: str, name: str) -> None:
    conn = await asyncpg.connect(maintenance_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_everything(maintenance_url: str, name: str, redis_url: str, prefix: str) -> None:
    conn = await asyncpg.connect(maintenance_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
    client = aioredis.Redis.from_url(redis_url)
    try:
        async for key in client.scan_iter(match=prefix + "*", count=1000):
            await client.unlink(key)
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def migrated_catalog(settings: Settings) -> AsyncIterator[tuple[asyncpg.Connection, aioredis.Redis]]:
    """A connection to `settings`' database (migrated) and a Redis client, for a trial to seed its catalog."""
    from cache.db import migrate

    conn = await asyncpg.connect(settings.database_url)
    redis = aioredis.Redis.from_url(settings.redis_url)
    try:
        await migrate(conn)
        yield conn, redis
    finally:
        await conn.close()
        await redis.aclose()


@contextlib.contextmanager
def _given(servers: tuple[str, str]) -> Iterator[tuple[str, str]]:
    yield servers


@contextlib.contextmanager
def scratch_settings(servers: tuple[str, str] | None = None, **overrides: object) -> Iterator[Settings]:
    """Settings on a fresh database and Redis prefix, both removed on exit.

    `servers` is (redis_url, maintenance database url), found or started when None; `overrides` are
    Settings fields.
    """
    tmp = tempfile.TemporaryDirectory(prefix="nearcart-load-")
    with tmp as tmp_dir, (_given(servers) if servers else local_or_embedded(Path(tmp_dir) / "services")) as (
        redis_url,
        maintenance_url,
    ):
        name = f"nearcart_load_{uuid.uuid4().hex[:10]}"
        prefix = f"ncl{uuid.uuid4().hex[:8]}:"
        asyncio.run(_create_database(maintenance_url, name))
        try:
            values: dict[str, object] = {
                "redis_url": redis_url,
                "database_url": with_database(maintenance_url, name),
                "redis_prefix": prefix,
                "secret": "load-test-secret",
                "data_dir": str(Path(tmp_dir) / "data"),
                "log_level": "warning",
            }
            values.update(overrides)
            yield load_settings(environ={}, **values)
        finally:
            asyncio.run(_drop_everything(maintenance_url, name, redis_url, prefix))


@contextlib.contextmanager
def demo_settings(servers: tuple[str, str] | None = None, **overrides: object) -> Iterator[Settings]:
    """Scratch settings with the demo catalog, its index and the campaign "demo" loaded."""
    from edge_api.demo import prepare_demo

    with scratch_settings(servers, **overrides) as settings:
        with contextlib.redirect_stdout(sys.stderr):
            asyncio.run(prepare_demo(settings))
        yield settings


def settings_env(settings: Settings) -> dict[str, str]:
    """This process's environment with the `NEARCART_*` variables that rebuild exactly `settings`."""
    from edge_api.server import settings_environ

    env = {key: value for key, value in os.environ.items() if not key.startswith(PREFIX)}
    env.update(settings_environ(settings))
    return env


def _bin(name: str) -> str:
    """A console script of this interpreter's environment (the project's .venv)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def wait_ready(base_url: str, path: str, process: subprocess.Popen[bytes], timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode} before it was ready")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(base_url + path, timeout=1) as answer:
                if answer.status == 200:
                    return
        time.sleep(0.1)
    raise RuntimeError(f"{base_url}{path} not ready within {timeout_s:.0f} s")


@contextlib.contextmanager
def running(command: Sequence[str], env: dict[str, str], port: int, ready_path: str) -> Iterator[str]:
    """Run a server command; yield its base URL once `ready_path` answers 200; stop it on exit."""
    # A file, not a pipe: a server logging more than a pipe holds would block on write.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(list(command), env=env, stdout=log, stderr=log, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(base_url, ready_path, process)
        except RuntimeError as exc:
            process.kill()
            process.wait()
            log.seek(0)
            output = log.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"{' '.join(command)}: {exc}\n{output}") from exc
        yield base_url
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def serve_nearcart(
    settings: Settings, workers: int = 1, port: int | None = None
) -> contextlib.AbstractContextManager[str]:
    """`nearcart serve` on 127.0.0.1, ready when /readyz says so (index present, stores loaded)."""
    port = port or free_port()
    command = [_bin("nearcart"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return running(command, settings_env(settings), port, "/readyz")


def serve_bare(workers: int = 1, port: int | None = None) -> contextlib.AbstractContextManager[str]:
    """The ceiling: loadtest/bare_app.py under uvicorn with the server's own loop/http settings."""
    port = port or free_port()
    command = [sys.executable, "-m", "loadtest.bare_app", "--port", str(port), "--workers", str(workers)]
    env = {key: value for key, value in os.environ.items() if not key.startswith(PREFIX)}
    return running(command, _with_project_path(env), port, "/readyz")


def serve_geo_floor(settings: Settings, port: int | None = None) -> contextlib.AbstractContextManager[str]:
    """(b)'s floor: loadtest/geo_floor_app.py (the bare route plus the offers' one GEOSEARCH) on `settings`' index."""
    port = port or free_port()
    command = [sys.executable, "-m", "loadtest.geo_floor_app", "--port", str(port)]
    return running(command, _with_project_path(settings_env(settings)), port, "/readyz")


def _with_project_path(env: dict[str, str]) -> dict[str, str]:
    """`env` with this checkout on PYTHONPATH, for the `python -m loadtest.*` apps."""
    return {**env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
