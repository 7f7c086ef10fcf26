"""Offers scaled out: 2 API processes behind nginx reading 2 Redis replicas, against 1 process on 1 Redis.

    python -m loadtest.bench_scaled [--duration 10] [--warmup 2] [--locality-warmup 30] [--unique-warmup 30]

Same run, same demo catalog, same wrk scenarios as `loadtest.bench` ((b) unique positions, (c)
shoppers' locality). The Redis here is a primary of its own on a free port with two
`redis-server --replicaof` replicas (never the shared server: replicating it would make it
fork for a full sync). nginx (Debian `nginx-light`) balances the two `nearcart serve
--workers 1` processes over keep-alive upstream connections; each reads the index from both
replicas (`NEARCART_REDIS_REPLICA_URLS`). "server CPU µs/answer" sums the API processes only
(not nginx, not Redis). On a 2-core machine the scaled stack shares the same two cores: the
row shows the cost of the extra hop and processes, not a gain a bigger machine would show.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec

from cache.embedded import LOCAL_POSTGRES_URL, free_port, reachable, redis_server_binary
from loadtest.bench import Bench, parse_args
from loadtest.bench_data import load_data, to_lua
from loadtest.bench_table import Row, table
from loadtest.server_cpu import server_cpu_s
from loadtest.stack import demo_settings, running, serve_nearcart
from loadtest.wrk import run_wrk, wrk_binary

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_CONF = """
worker_processes 1;
error_log stderr error;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    upstream nearcart {{ server 127.0.0.1:{a}; server 127.0.0.1:{b}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://nearcart;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
}}
"""


@contextlib.contextmanager
def redis_process(folder: Path, *args: str) -> Iterator[str]:
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(folder), "--logfile", str(folder / "log"), *args])
    try:
        deadline = time.monotonic() + 10
        while not reachable("127.0.0.1", port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {port} did not start")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait()


@contextlib.contextmanager
def nginx_in_front(ports: tuple[int, int], folder: Path) -> Iterator[str]:
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(a=ports[0], b=ports[1], port=port))
    command = [NGINX, "-p", str(folder), "-c", str(conf), "-e", "stderr", "-g", f"pid {folder}/nginx.pid; daemon off;"]
    with running(command, {}, port, "/readyz") as url:
        yield url


def scaled_row(bench: Bench, key: str, mode: str, url: str, api_ports: list[int], warmup_s: float) -> Row:
    args = bench.args
    run_wrk(url, bench.data_file, mode, max(args.warmup, warmup_s), args.connections, args.threads)
    cpu_before = sum(server_cpu_s(port) for port in api_ports)
    result = run_wrk(url, bench.data_file, mode, args.duration, args.connections, args.threads)
    cpu_us = (sum(server_cpu_s(port) for port in api_ports) - cpu_before) / result.requests * 1e6
    scenario = "/v1/offers, unique locations" if mode == "unique" else "/v1/offers, shoppers' locality"
    return Row(key=key, scenario=f"{scenario}: 2 processes, nginx, 2 replicas", workers=2, rps=result.rate,
               p50_ms=result.p50_us / 1000, p99_ms=result.p99_us / 1000, cpu_us=cpu_us, errors=result.errors,
               error_kinds=result.error_kinds(), checked="ok")


def run(args: argparse.Namespace) -> list[Row]:
    wrk_binary()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="nearcart-scaled-") as tmp_dir:
        tmp = Path(tmp_dir)
        with redis_process(tmp / "primary") as primary_url, \
                demo_settings((primary_url, LOCAL_POSTGRES_URL)) as settings:
            primary_port = primary_url.rsplit(":", 1)[1].split("/")[0]
            data = load_data(settings)
            data_file = tmp / "data.lua"
            data_file.write_text("return " + to_lua(msgspec.to_builtins(data)) + "\n")
            bench = Bench(args, data_file, data)
            with serve_nearcart(settings, workers=1) as url:
                rows.append(bench.row("b", "/v1/offers, unique locations: 1 process, 1 Redis", 1, url, "unique",
                                      True, False, steady_after_s=args.unique_warmup))
                rows.append(bench.row("c", "/v1/offers, shoppers' locality: 1 process, 1 Redis", 1, url,
                                      "locality", True, False, steady_after_s=args.locality_warmup))
            with redis_process(tmp / "r1", "--replicaof", "127.0.0.1", primary_port) as r1, \
                    redis_process(tmp / "r2", "--replicaof", "127.0.0.1", primary_port) as r2:
                scaled = msgspec.structs.replace(settings, redis_replica_urls=(r1, r2))
                ports = [free_port(), free_port()]
                with serve_nearcart(scaled, port=ports[0]), serve_nearcart(scaled, port=ports[1]), \
                        nginx_in_front((ports[0], ports[1]), tmp / "nginx") as url:
                    rows.append(scaled_row(bench, "b2", "unique", url, ports, args.unique_warmup))
                    rows.append(scaled_row(bench, "c2", "locality", url, ports, args.locality_warmup))
    for row in rows:
        row.vs_bare = float("nan")
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    rows = run(args)
    print(table(rows))
    elapsed = time.monotonic() - started
    print(f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, {elapsed:.0f} s in all")
    return 0 if all(r.checked == "ok" and not r.errors for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
