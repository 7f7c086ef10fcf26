"""Drives wrk with the offers script (`wrk_offers.lua`) and reads the one result line it prints."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec

LUA_SCRIPT = Path(__file__).with_name("wrk_offers.lua")


class WrkResult(msgspec.Struct):
    requests: int
    duration_us: int
    bytes: int
    connect: int
    read: int
    write: int
    status: int
    timeout: int
    p50_us: int
    p90_us: int
    p99_us: int
    p999_us: int
    mean_us: float
    max_us: int

    @property
    def rate(self) -> float:
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0

    @property
    def errors(self) -> int:
        return self.connect + self.read + self.write + self.status + self.timeout

    def error_kinds(self) -> str:
        """'' or e.g. "3 status, 1 timeout" (status: answers other than 2xx/3xx)."""
        kinds = {"connect": self.connect, "read": self.read, "write": self.write, "status": self.status,
                 "timeout": self.timeout}
        return ", ".join(f"{count} {kind}" for kind, count in kinds.items() if count)


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is not installed: `apt-get install wrk` (Debian package wrk 4.x) and run again.")
    return found


def run_wrk(base_url: str, data_file: Path, mode: str, duration_s: float, connections: int, threads: int,
            rate: float = 0.0) -> WrkResult:
    """wrk with the offers script; `rate` > 0 paces it to that many requests per second in all."""
    env = dict(os.environ, NEARCART_BENCH_DATA=str(data_file), NEARCART_BENCH_MODE=mode,
               NEARCART_BENCH_RATE=f"{rate / threads:.3f}")
    command = [wrk_binary(), "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration_s))}s",
               "--timeout", "2s", "-s", str(LUA_SCRIPT), base_url]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration_s + 60, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("NEARCART_WRK ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return msgspec.json.decode(line.split(" ", 1)[1], type=WrkResult)
