"""Instructions the worker executes per `/v1/offers` answer, counted by callgrind: a figure a busy machine cannot blur.

Wall-clock runs (`python -m loadtest.bench`) swing by tens of percent when other processes share the
cores; the instruction count of one process does not. The demo catalog is loaded into a scratch
database and Redis prefix (loadtest.stack.demo_settings, removed afterwards); a child process, under
`valgrind --tool=callgrind --collect-atstart=no`, drives the ASGI app of `edge_api.app.create_app`
directly (lifespan through ASGI messages, then HTTP scopes), sends a warm-up, then the measured
requests between two CALLGRIND_TOGGLE_COLLECT client requests (a one-line C library built with `cc`
at run time; needs valgrind's headers): only those are counted.

Scenarios: (b) unique positions (a new lat/lon near a store for every request, any product: every
answer computed); (c) shoppers' locality (towns and postal codes, hot products: the measured requests
repeat the warm-up's, so every answer is a cached one); "bare" a bare Starlette route
(loadtest/bare_app.py), the floor. Only the app is driven: no socket, no HTTP parsing.

It drives the app only through ASGI, so the same file measures an older tree too:
`PYTHONPATH=/old/tree python benchmarks/offers_instructions.py --tree /old/tree --requests 300`.
Redis and database timeouts are raised (valgrind runs the client about 50 times slower, and a 50 ms
Redis timeout would turn answers into 503s) and the event aggregator is off (a background task whose
work per request would grow with the slowdown); the same for every tree.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

TREE = Path(__file__).resolve().parent.parent
SCENARIOS = ("unique", "locality", "bare")
TITLES = {"unique": "(b) unique positions", "locality": "(c) shoppers' locality", "bare": "bare Starlette route"}
HOST = b"127.0.0.1:8000"

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Message, Receive, Send], Awaitable[None]]


# ---- the queries ----------------------------------------------------------------------------------

def _bench_data() -> Any:
    """This checkout's loadtest/bench_data.py, by file: an older tree measured may not have it."""
    spec = importlib.util.spec_from_file_location("nearcart_bench_data", TREE / "loadtest" / "bench_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _path(query: dict[str, str]) -> str:
    return "/v1/offers?" + urlencode(query)


def unique_paths(data: Any, count: int, seed: int) -> list[str]:
    """A fresh full-precision position within 0.1 degree of a store, any product (wrk_offers.lua's unique_path)."""
    rng = random.Random(seed)
    paths = []
    for _ in range(count):
        lat, lon = rng.choice(data.spots)
        paths.append(_path({"gtin": rng.choice(data.gtins), "campaign": data.campaign,
                            "lat": f"{lat + (rng.random() - 0.5) * 0.2:.6f}",
                            "lon": f"{lon + (rng.random() - 0.5) * 0.2:.6f}"}))
    return paths


def locality_paths(data: Any, count: int, seed: int) -> list[str]:
    """The 30 largest towns by population, half by postal code, half at a position rounded to 0.01 degree."""
    rng = random.Random(seed)
    paths = []
    for _ in range(count):
        city = rng.choices(data.cities, cum_weights=data.city_cum)[0]
        query = {"gtin": rng.choices(data.hot, cum_weights=data.hot_cum)[0], "campaign": data.campaign}
        if rng.random() < 0.5 and city.postal_codes:
            query.update(postal_code=rng.choice(city.postal_codes), country="FR")
        else:
            query.update(lat=f"{round(city.lat + rng.gauss(0, 0.03), 2):.2f}",
                         lon=f"{round(city.lon + rng.gauss(0, 0.04), 2):.2f}")
        paths.append(_path(query))
    return paths


def plan(settings: Any, requests: int) -> dict[str, dict[str, list[str]]]:
    """Warm-up and measured paths per scenario; the same seeds on every tree."""
    data = _bench_data().load_data(settings)
    pool = locality_paths(data, requests, seed=3)
    unique = {"warmup": unique_paths(data, requests, seed=1), "measured": unique_paths(data, requests, seed=2)}
    return {"unique": unique, "locality": {"warmup": pool, "measured": random.Random(4).sample(pool, len(pool))},
            "bare": unique}


# ---- the child: drives the app through ASGI ------------------------------------------------------

class Lifespan:
    """The server's side of the ASGI lifespan protocol; `state` is what request scopes get a copy of."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.3"}, "state": self.state}
        self._task = asyncio.ensure_future(self.app(scope, self._inbox.get, self._outbox.put))
        await self._inbox.put({"type": "lifespan.startup"})
        reply = await self._outbox.get()
        if reply["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"lifespan startup failed: {reply}")

    async def stop(self) -> None:
        await self._inbox.put({"type": "lifespan.shutdown"})
        await self._outbox.get()
        if self._task is not None:
            await self._task


async def answer(app: App, state: dict[str, Any], path: str) -> tuple[int, bytes]:
    """One GET as uvicorn would hand it over: status and body."""
    route, _, query = path.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": route, "raw_path": route.encode(), "root_path": "",
        "query_string": query.encode(), "headers": [(b"host", HOST), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000), "state": dict(state),
    }
    status, body = 0, []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(body)


async def drive(app: App, state: dict[str, Any], paths: list[str]) -> dict[str, int]:
    statuses: dict[str, int] = {}
    for path in paths:
        status, _ = await answer(app, state, path)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return statuses


def build_toggle(directory: str) -> str:
    """A one-function library that flips callgrind's collection (a client request: exact, unlike a symbol match)."""
    source = Path(directory) / "toggle.c"
    source.write_text("#include <valgrind/callgrind.h>\nvoid nearcart_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }\n")
    library = str(Path(directory) / "toggle.so")
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", library, str(source)], check=True)
    return library


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop, as `nearcart serve` runs it, when installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def child(scenario: str, plan_file: str, toggle_library: str) -> None:
    paths = json.loads(Path(plan_file).read_text())[scenario]
    if scenario == "bare":
        from loadtest.bare_app import app as bare

        app: App = bare
    else:
        from edge_api.app import create_app
        from edge_api.settings import load_settings

        app = create_app(load_settings())
    loop = new_loop()
    asyncio.set_event_loop(loop)
    lifespan = Lifespan(app)
    loop.run_until_complete(lifespan.start())
    warm = loop.run_until_complete(drive(app, lifespan.state, paths["warmup"]))
    toggle = ctypes.CDLL(toggle_library).nearcart_toggle
    toggle()
    counted = loop.run_until_complete(drive(app, lifespan.state, paths["measured"]))
    toggle()
    loop.run_until_complete(lifespan.stop())
    loop.close()
    print("NEARCART_STATUSES " + json.dumps({"warmup": warm, "measured": counted}))


# ---- the parent: data, valgrind, table -----------------------------------------------------------

def count(scenario: str, plan_file: str, env: dict[str, str], out_dir: str, toggle: str) -> tuple[int, dict[str, Any]]:
    """Instructions counted in the child's measured window, and the child's status counts."""
    out_file = os.path.join(out_dir, f"callgrind.{scenario}")
    command = ["valgrind", "--tool=callgrind", "--collect-atstart=no", f"--callgrind-out-file={out_file}",
               sys.executable, str(Path(__file__).resolve()), "--child", scenario, "--plan", plan_file,
               "--toggle", toggle]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    found = re.search(r"^NEARCART_STATUSES (.*)$", done.stdout, re.M)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"{scenario}: child exited {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    totals = re.search(r"^(?:totals|summary): (\d+)", Path(out_file).read_text(), re.M)
    if not totals:
        raise RuntimeError(f"{scenario}: no totals in {out_file}")
    return int(totals.group(1)), json.loads(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="measured answers per scenario (and warm-up)")
    parser.add_argument("--scenario", choices=SCENARIOS, action="append", help="default: all")
    parser.add_argument("--tree", default=str(TREE), help="the tree measured (the child's PYTHONPATH)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--child", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    parser.add_argument("--toggle", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.plan, args.toggle)
        return

    from loadtest.stack import demo_settings, settings_env

    rows = []
    relaxed = demo_settings(None, redis_timeout_s=30.0, database_timeout_s=30.0, aggregate_events=False)
    with relaxed as settings, tempfile.TemporaryDirectory(prefix="nearcart-instr-") as tmp:
        plan_file = os.path.join(tmp, "plan.json")
        Path(plan_file).write_text(json.dumps(plan(settings, args.requests)))
        env = {**settings_env(settings), "PYTHONPATH": args.tree}
        toggle = build_toggle(tmp)
        for scenario in args.scenario or SCENARIOS:
            instructions, statuses = count(scenario, plan_file, env, tmp, toggle)
            rows.append({"scenario": scenario, "tree": args.tree, "requests": args.requests,
                         "instructions_per_answer": round(instructions / args.requests),
                         "statuses": statuses})
            print(f"{scenario}: {instructions / args.requests:,.0f} instructions per answer {statuses}",
                  file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| scenario | tree | instructions per answer |")
    print("|---|---|---:|")
    for row in rows:
        print(f"| {TITLES[row['scenario']]} | {row['tree']} | {row['instructions_per_answer']:,} |")


if __name__ == "__main__":
    main()
