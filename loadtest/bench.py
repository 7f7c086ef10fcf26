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
import asyncio
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import msgspec

from edge_api.settings import Settings
from geo.distance import great_circle_km
from geo.postal import postal_codes
from geo.towns import french_towns
from loadtest.stack import demo_settings, serve_bare, serve_geo_floor, serve_nearcart

LUA_SCRIPT = Path(__file__).with_name("wrk_offers.lua")
HOT_PRODUCTS = 5
CITIES = 30
# A town's postal codes: those whose centroid lies this close to its centre.
CITY_RADIUS_KM = 8.0
PACED_SHARE = 0.7
# Paced runs share one schedule among as many connections as the flat-out runs. wrk delays a request
# by whole milliseconds only, so connections whose slots fall in the same millisecond leave together:
# the more connections, the bigger the bursts the server sees (the bare route at 70 % in one run: p99
# 1.5 ms with 8 connections, 2.4 ms with 16, 9.0 ms with 64). With 16, a stall of up to 16 request
# intervals still shows in full before the schedule slips (a longer one is under-counted).
PACED_CONNECTIONS = 16


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


class Row(msgspec.Struct):
    key: str
    scenario: str
    workers: int
    rps: float
    p50_ms: float
    p99_ms: float
    vs_bare: float = 0.0
    paced_rps: float | None = None
    paced_p99_ms: float | None = None
    # Share of the measured answers replayed from the front cache or the micro-cache (one worker only).
    cached: float | None = None
    # CPU time the server's processes spent per answer in the measured run (user + system).
    cpu_us: float | None = None
    errors: int = 0
    error_kinds: str = ""
    checked: str = ""


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


# --- what the load scripts send --------------------------------------------------------------------


async def _catalog_sample(settings: Settings) -> tuple[list[str], list[tuple[float, float]]]:
    """Products with offers, most offered first, and the positions of stores that have some."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        gtins = [r["gtin"] for r in await conn.fetch(
            "SELECT gtin, count(*) AS n FROM offers WHERE quantity > 0 GROUP BY gtin ORDER BY n DESC, gtin")]
        spots = [(r["lat"], r["lon"]) for r in await conn.fetch(
            "SELECT DISTINCT s.lat, s.lon FROM stores s JOIN offers o USING (retailer_id, store_id) "
            "WHERE o.quantity > 0 ORDER BY s.lat, s.lon")]
    finally:
        await conn.close()
    if not gtins or not spots:
        raise RuntimeError("the demo catalog has no in-stock store offer to ask for")
    return gtins, spots


class City(msgspec.Struct):
    lat: float
    lon: float
    population: int
    postal_codes: list[str]


class LoadData(msgspec.Struct):
    """What the wrk script draws its queries from (written for it as a Lua table)."""

    campaign: str
    gtins: list[str]
    spots: list[tuple[float, float]]
    hot: list[str]
    hot_cum: list[float]
    cities: list[City]
    city_cum: list[float]


def load_data(settings: Settings, campaign: str = "demo") -> LoadData:
    gtins, spots = asyncio.run(_catalog_sample(settings))
    codes = postal_codes("FR")
    cities = []
    for town in french_towns(15000)[:CITIES]:
        near = sorted(code for code, (lat, lon, _) in codes.items()
                      if great_circle_km(town.lat, town.lon, lat, lon) <= CITY_RADIUS_KM)
        cities.append(City(lat=town.lat, lon=town.lon, population=town.population, postal_codes=near))
    hot = gtins[:HOT_PRODUCTS]
    # Zipf-like: the second product draws half the shoppers of the first, the third a third...
    hot_weights = [1 / rank for rank in range(1, len(hot) + 1)]
    return LoadData(
        campaign=campaign,
        gtins=gtins,
        spots=random.Random(7).sample(spots, min(500, len(spots))),
        hot=hot,
        hot_cum=_cumulative(hot_weights),
        cities=cities,
        city_cum=_cumulative([float(c.population) for c in cities]),
    )


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def to_lua(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {to_lua(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(to_lua(v) for v in value) + "}"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def sample_queries(data: LoadData, mode: str, count: int = 6) -> list[dict[str, str]]:
    """A few queries shaped like the Lua script's, for checking answers."""
    rng = random.Random(11)
    queries = []
    for i in range(count):
        if mode == "unique":
            lat, lon = rng.choice(data.spots)
            queries.append({"gtin": data.gtins[i % len(data.gtins)], "campaign": data.campaign,
                            "lat": f"{lat:.6f}", "lon": f"{lon:.6f}"})
            continue
        city = data.cities[i % len(data.cities)]
        query = {"gtin": data.hot[i % len(data.hot)], "campaign": data.campaign}
        if i % 2 and city.postal_codes:
            query.update(postal_code=city.postal_codes[0], country="FR")
        else:
            query.update(lat=f"{city.lat:.2f}", lon=f"{city.lon:.2f}")
        queries.append(query)
    return queries


def check_answers(base_url: str, data: LoadData, mode: str, expect_offers: bool) -> str:
    """'' when every sample answer is a 200 JSON with an offers list (some non-empty if expected), else why not."""
    found = 0
    with httpx.Client(base_url=base_url, timeout=5) as client:
        for query in sample_queries(data, mode):
            answer = client.get("/v1/offers", params=query)
            if answer.status_code != 200:
                return f"{answer.status_code} for {query}: {answer.text[:200]}"
            offers = answer.json().get("offers")
            if not isinstance(offers, list):
                return f"no offers list for {query}"
            found += bool(offers)
    return "" if found or not expect_offers else "every sample answer was empty"


# --- the runs -----------------------------------------------------------------------------------------


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


def server_cpu_s(port: int) -> float:
    """CPU seconds (user + system) used so far by the server listening on `port` and its workers.

    Less sensitive than req/s to other jobs on a shared machine: what the server spent per
    answer, whoever else was running.
    """
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            stats[int(entry.name)] = (cmdline, int(fields[1]), int(fields[11]) + int(fields[12]))
    roots = {pid for pid, (cmdline, _, _) in stats.items() if b"--port" in cmdline
             and str(port).encode() in cmdline[cmdline.index(b"--port") + 1:cmdline.index(b"--port") + 2]}
    tree, grew = set(roots), True
    while grew:
        children = {pid for pid, (_, parent, _) in stats.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    return sum(stats[pid][2] for pid in tree) / os.sysconf("SC_CLK_TCK")


_CACHE_COUNTERS = re.compile(
    r'^nearcart_offers_(?:front_hits_total|coalesced_total|micro_cache_total\{result="(hit|miss)"\}) (\S+)$',
    re.MULTILINE)


def cache_counts(base_url: str) -> tuple[float, float]:
    """(answers from a cache or shared with an identical request, answers computed) so far, from `/metrics`."""
    text = httpx.get(base_url + "/metrics", timeout=5).text
    cached = computed = 0.0
    for result, value in _CACHE_COUNTERS.findall(text):
        if result == "miss":
            computed += float(value)
        else:
            cached += float(value)
    return cached, computed


def cached_share(before: tuple[float, float], after: tuple[float, float]) -> float | None:
    cached, computed = after[0] - before[0], after[1] - before[1]
    return cached / (cached + computed) if cached + computed > 0 else None


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


def table(rows: list[Row]) -> str:
    lines = ["| scenario | workers | req/s | p50 ms | p99 ms | vs bare | p99 ms at 70 % (req/s) | cached "
             "| server CPU µs/answer |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for r in rows:
        paced = f"{r.paced_p99_ms:.2f} ({r.paced_rps:,.0f})" if r.paced_p99_ms is not None else "-"
        problems = [p for p in (r.error_kinds, "" if r.checked == "ok" else f"check: {r.checked[:300]}") if p]
        if problems:
            notes.append(f"- ({r.key}) NOT VALID: {'; '.join(problems)}")
        cached = f"{r.cached:.0%}" if r.cached is not None else "-"
        cpu = f"{r.cpu_us:.0f}" if r.cpu_us is not None else "-"
        lines.append(f"| ({r.key}) {r.scenario}{' **(!)**' if problems else ''} | {r.workers} | {r.rps:,.0f} | "
                     f"{r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.vs_bare:.0%} | {paced} | {cached} | {cpu} |")
    return "\n".join(lines + ([""] + notes if notes else []))


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
