"""How fast `/v1/offers` is next to a bare Starlette route, measured in one run on this machine.

    .venv/bin/python -m loadtest.bench [--duration 10] [--json]

Rows, each against a real server process on 127.0.0.1 (same uvicorn loop/http settings):
(a) a bare Starlette JSON route, the ceiling; (b0) the floor of (b): the bare route plus the
one Redis GEOSEARCH (b) makes, through the same pipe (`loadtest/geo_floor_app.py`: what any
computed answer costs before it is ranked and encoded); (b) `/v1/offers` with a unique position per
request (every cache misses); (c) `/v1/offers` with shoppers' locality (the 30 largest
towns, postal codes and widget-rounded positions, a few hot products); (d) (c) on 2
workers. Each row gives wrk's req/s, p50 and p99, the ratio to (a) and, for (a), (b) and (c),
p99 at 70 % of that row's own maximum rate (wrk paced by its Lua `delay()`); for (b) and (c),
the share of answers that came from the server's caches (its `/metrics` counters). Absolute
figures drift on a shared machine; the ratios of one run hold. Answers are checked
(status 200, JSON with offers, some non-empty) so a fast stream of errors cannot pass.
Each /v1/offers row starts after 30 s of the same load (`--unique-warmup`, `--locality-warmup`):
the caches of a server that has been up a while, not of one just started. For (b) no
answer repeats, but the worker already knows the stores and prices it lists and has
signed this minute's links; locality rows would otherwise see the caches (b)'s unique
positions flooded, which hold them until answers asked twice push them out.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from loadtest.answer_check import check_answers
from loadtest.bench_data import LoadData, load_data, to_lua
from loadtest.bench_table import Row, table
from loadtest.cache_share import cache_counts, cached_share
from loadtest.server_cpu import server_cpu_s
from loadtest.stack import demo_settings, serve_bare, serve_geo_floor, serve_nearcart
from loadtest.wrk import WrkResult, run_wrk, wrk_binary

PACED_SHARE = 0.7
# Paced runs share one schedule among as many connections as the flat-out runs. wrk delays a request
# by whole milliseconds only, so connections whose slots fall in the same millisecond leave together:
# the more connections, the bigger the bursts the server sees (the bare route at 70 % in one run: p99
# 1.5 ms with 8 connections, 2.4 ms with 16, 9.0 ms with 64). With 16, a stall of up to 16 request
# intervals still shows in full before the schedule slips (a longer one is under-counted).
PACED_CONNECTIONS = 16


class Bench:
    def __init__(self, args: argparse.Namespace, data_file: Path, data: LoadData) -> None:
        self.args = args
        self.data_file = data_file
        self.data = data

    def measure(self, base_url: str, mode: str, connections: int, rate: float = 0.0, count_cached: bool = False,
                warmup_s: float | None = None) -> tuple[WrkResult, float | None, float | None]:
        """wrk's result, the server's CPU µs per answer and, if asked, the share of answers from a cache."""
        args = self.args
        warmup_s = args.warmup if warmup_s is None else warmup_s
        if warmup_s > 0:
            run_wrk(base_url, self.data_file, mode, warmup_s, connections, args.threads, rate)
        before = cache_counts(base_url) if count_cached else None
        port = int(base_url.rsplit(":", 1)[1])
        cpu_before = server_cpu_s(port)
        result = run_wrk(base_url, self.data_file, mode, args.duration, connections, args.threads, rate)
        cpu_us = (server_cpu_s(port) - cpu_before) / result.requests * 1e6 if result.requests else None
        return result, cpu_us, (cached_share(before, cache_counts(base_url)) if before is not None else None)

    def row(self, key: str, scenario: str, workers: int, base_url: str, mode: str, expect_offers: bool,
            paced: bool, count_cached: bool = False, steady_after_s: float = 0.0) -> Row:
        """One row; `steady_after_s` seconds of the same load first (if more than --warmup), for a server in
        its steady state: caches as a server that has been up a while has them."""
        problem = check_answers(base_url, self.data, mode, expect_offers)
        result, cpu_us, cached = self.measure(base_url, mode, self.args.connections, count_cached=count_cached,
                                              warmup_s=max(self.args.warmup, steady_after_s))
        row = Row(key=key, scenario=scenario, workers=workers, rps=result.rate, p50_ms=result.p50_us / 1000,
                  p99_ms=result.p99_us / 1000, cached=cached, cpu_us=cpu_us, errors=result.errors,
                  error_kinds=result.error_kinds(), checked=problem or "ok")
        _progress(f"{key} {scenario}, {workers} worker(s): {row.rps:,.0f} req/s, p99 {row.p99_ms:.2f} ms")
        if paced and not problem:
            row.paced_rps, row.paced_p99_ms = self.paced(base_url, mode, result)
            _progress(f"{key} at {PACED_SHARE:.0%}: {row.paced_rps:,.0f} req/s, p99 {row.paced_p99_ms:.2f} ms")
        return row

    def paced(self, base_url: str, mode: str, flat_out: WrkResult) -> tuple[float, float]:
        """(rate reached, p99) when requests leave at 70 % of the flat-out rate, whatever the latency."""
        result, _, _ = self.measure(base_url, mode, PACED_CONNECTIONS, flat_out.rate * PACED_SHARE)
        return result.rate, result.p99_us / 1000


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> list[Row]:
    wrk_binary()
    rows: list[Row] = []
    with demo_settings() as settings, tempfile.TemporaryDirectory(prefix="nearcart-bench-") as tmp:
        data = load_data(settings)
        data_file = Path(tmp) / "data.lua"
        data_file.write_text("return " + to_lua(msgspec.to_builtins(data)) + "\n")
        bench = Bench(args, data_file, data)
        with serve_bare(workers=1) as url:
            # Paced too: the generator's own share of p99 at 70 % shows on the ceiling's row.
            rows.append(bench.row("a", "bare Starlette JSON route", 1, url, "unique", False, True))
        with serve_geo_floor(settings) as url:
            # What any computed answer costs at least: the bare route plus the one Redis search (b) makes.
            rows.append(bench.row("b0", "floor of (b): bare route + its GEOSEARCH", 1, url, "unique", True, False))
        with serve_nearcart(settings, workers=1) as url:
            rows.append(bench.row("b", "/v1/offers, unique locations", 1, url, "unique", True, not args.no_paced,
                                  count_cached=True, steady_after_s=args.unique_warmup))
            rows.append(bench.row("c", "/v1/offers, shoppers' locality", 1, url, "locality", True,
                                  not args.no_paced, count_cached=True, steady_after_s=args.locality_warmup))
        with serve_nearcart(settings, workers=2) as url:
            rows.append(bench.row("d", "/v1/offers, shoppers' locality", 2, url, "locality", True, False,
                                  steady_after_s=args.locality_warmup))
    bare = rows[0].rps
    for row in rows:
        row.vs_bare = row.rps / bare if bare else math.nan
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load before each run")
    parser.add_argument("--locality-warmup", type=float, default=30.0,
                        help="seconds of unmeasured load before the first locality run on a server, for caches to "
                             "reach their steady state (default 30; 0: just --warmup)")
    parser.add_argument("--unique-warmup", type=float, default=30.0,
                        help="seconds of unmeasured unique-position load before (b): no answer repeats, but a "
                             "worker up a while knows the stores and prices it lists and has signed this "
                             "minute's links (default 30; 0: just --warmup)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections for flat-out runs")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (keep low: 2 cores)")
    parser.add_argument("--no-paced", action="store_true", help="skip the p99-at-70 %% runs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the markdown table")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    rows = run(args)
    if args.json:
        print(msgspec.json.encode({"cpus": os.cpu_count(), "duration_s": args.duration,
                                   "connections": args.connections, "threads": args.threads,
                                   "rows": rows}).decode())
    else:
        print(table(rows))
        print(f"\n{os.cpu_count()} CPUs, wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s "
              f"(paced: -c{PACED_CONNECTIONS}), {time.monotonic() - started:.0f} s in all")
    return 0 if all(r.checked == "ok" and not r.errors for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
