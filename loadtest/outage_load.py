"""Shoppers and beacons for the outage trials (redis_outage.py, postgres_outage.py), and their tables.

Each offers answer is checked against what the same place got before the outage: "full" (the
same retailers, modes and stores), "partial" (some missing, e.g. delivery offers), or
"empty-but-wrong" (`offers: []` where there are offers: the answer an outage must never give).
Half the requests ask again at the same places (answers the workers keep), half at a position
nudged by at most 10 cm (a query no cache holds, that must reach the index).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import NamedTuple

import asyncpg
import httpx
import msgspec

# Concurrent shoppers: enough to keep two workers busy, few enough to leave the 2-core machine a rebuild.
SHOPPERS = 4
BEACON_BATCH = 10
BEACON_EVERY_S = 0.05
# Positions nudged by k * 1e-12 degree, k < 1e6 (at most about 10 cm): a query string no cache holds
# yet the same nearest stores (none is 10 cm nearer or farther than the next one).
NUDGE_STEP_DEG = 1e-12
NUDGE_STEPS = 10**6
# Full answers for this long in a row, after the server returned, count as "healed".
STEADY_S = 2.0


class Place(NamedTuple):
    gtin: str
    lat: float
    lon: float
    # Asked with this campaign's rules (read from PostgreSQL), or none.
    campaign: str = ""


Signature = frozenset[tuple[str, str, str]]


def signature(body: bytes) -> Signature:
    """What an answer offers: (retailer, mode, store) of each offer, without prices' links or distances."""
    offers = msgspec.json.decode(body)["offers"]
    return frozenset((o["retailer"]["id"], o["mode"], (o["store"] or {}).get("id", "")) for o in offers)


async def pick_places(database_url: str, count: int = 16, seed: int = 7) -> list[Place]:
    """Store positions with an in-stock offer of a product there: every answer about them has offers."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT o.gtin, s.lat, s.lon FROM offers o JOIN stores s USING (retailer_id, store_id)"
            " WHERE o.quantity > 0 ORDER BY o.gtin, s.store_id LIMIT 5000")
    finally:
        await conn.close()
    chosen = random.Random(seed).sample(list(rows), k=min(count, len(rows)))
    return [Place(row["gtin"].strip(), round(row["lat"], 4), round(row["lon"], 4)) for row in chosen]


def params(place: Place, nudge: float = 0.0) -> dict[str, str]:
    asked = {"gtin": place.gtin, "lat": f"{place.lat + nudge:.12f}", "lon": f"{place.lon:.12f}", "radius_km": "20"}
    return {**asked, "campaign": place.campaign} if place.campaign else asked


async def baselines(client: httpx.AsyncClient, places: list[Place]) -> dict[Place, Signature]:
    """What each place is offered with everything up (places whose answer is empty are left out)."""
    found: dict[Place, Signature] = {}
    for place in places:
        answer = await client.get("/v1/offers", params=params(place))
        if answer.status_code == 200 and signature(answer.content):
            found[place] = signature(answer.content)
    if not found:
        raise RuntimeError("no place with offers: is the demo catalog loaded and indexed?")
    return found


class Trial:
    """What the load saw, by phase: offers outcomes per kind of request, latencies, beacons."""

    def __init__(self, truth: dict[Place, Signature]) -> None:
        self.truth = truth
        self.phase = "before"
        self.phases: list[str] = ["before"]
        self.running = True
        self.outcomes: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        self.latencies: defaultdict[str, list[float]] = defaultdict(list)
        # (monotonic time, full or not) of answers to queries no cache held: when full answers came back.
        self.uncached: list[tuple[float, bool]] = []
        # (monotonic time, /readyz said 200) every 100 ms.
        self.readiness: list[tuple[float, bool]] = []
        self.events_sent: Counter[str] = Counter()
        self.beacon_statuses: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def enter(self, phase: str) -> None:
        self.phase = phase
        self.phases.append(phase)

    def outcome(self, place: Place, status: int, body: bytes) -> str:
        if status != 200:
            return str(status)
        got = signature(body)
        if got == self.truth[place]:
            return "full"
        return "empty-but-wrong" if not got else "partial"

    async def shopper(self, client: httpx.AsyncClient, seed: int) -> None:
        rng = random.Random(seed)
        places = list(self.truth)
        while self.running:
            place = rng.choice(places)
            kind = rng.choice(("cached", "uncached"))
            nudge = rng.randrange(1, NUDGE_STEPS) * NUDGE_STEP_DEG if kind == "uncached" else 0.0
            phase = self.phase
            started = time.perf_counter()
            try:
                answer = await client.get("/v1/offers", params=params(place, nudge))
                outcome = self.outcome(place, answer.status_code, answer.content)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            self.latencies[phase].append((time.perf_counter() - started) * 1000)
            self.outcomes[(phase, kind)][outcome] += 1
            if kind == "uncached":
                self.uncached.append((time.monotonic(), outcome == "full"))

    async def beacons(self, client: httpx.AsyncClient) -> None:
        """`open` beacons, campaign named after the phase they were sent in (counted per phase later).

        Phase names are campaign ids for that reason: letters, digits, `-` and `_`.
        """
        while self.running:
            phase = self.phase
            body = [{"type": "open", "campaign": phase, "gtin": "3017620422003", "ts": int(time.time() * 1000)}
                    for _ in range(BEACON_BATCH)]
            try:
                answer = await client.post("/v1/events", content=msgspec.json.encode(body),
                                           headers={"content-type": "text/plain"})
                status = str(answer.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            self.events_sent[phase] += BEACON_BATCH
            self.beacon_statuses[phase][status] += 1
            await asyncio.sleep(BEACON_EVERY_S)

    async def ready_probe(self, client: httpx.AsyncClient) -> None:
        while self.running:
            try:
                ready = (await client.get("/readyz")).status_code == 200
            except httpx.HTTPError:
                ready = False
            self.readiness.append((time.monotonic(), ready))
            await asyncio.sleep(0.1)

    def ready_again_after(self, since: float) -> float | None:
        """Seconds from `since` after which /readyz said 200 every time, or None if it never did."""
        later = [(t, ready) for t, ready in self.readiness if t >= since]
        if not later or not later[-1][1]:
            return None
        not_ready = [t - since for t, ready in later if not ready]
        return max(not_ready) if not_ready else 0.0

    def full_again_after(self, since: float) -> tuple[float | None, float | None]:
        """Seconds from `since` to the first full uncached answer, and to the last one that was not full."""
        later = [(t, full) for t, full in self.uncached if t >= since]
        first = next((t - since for t, full in later if full), None)
        not_full = [t - since for t, full in later if not full]
        return first, (max(not_full) if not_full else 0.0)

    def healed(self, since: float, steady_s: float) -> bool:
        """Whether every uncached answer since `steady_s` ago was full, and there were some."""
        now = time.monotonic()
        recent = [full for t, full in self.uncached if t >= max(since, now - steady_s)]
        return bool(recent) and all(recent) and now - since >= steady_s

    def print_answers(self) -> None:
        columns = ("full", "partial", "empty-but-wrong", "503")
        print("| phase | asked at | answers | 200 full | 200 partial | 200 empty-but-wrong | 503 | other"
              " | p50 ms | p99 ms | max ms |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for phase in self.phases:
            times = sorted(self.latencies[phase]) or [0.0]
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            for kind in ("cached", "uncached"):
                seen = self.outcomes[(phase, kind)]
                other_names = ", ".join(f"{n} x {name}" for name, n in seen.items() if name not in columns)
                place = "same places" if kind == "cached" else "new positions"
                print(f"| {phase} | {place} | {sum(seen.values()):,} | "
                      + " | ".join(f"{seen[name]:,}" for name in columns)
                      + f" | {other_names or 0} | {statistics.median(times):.1f} | {p99:.1f} | {times[-1]:.0f} |")

    def print_events(self, counted: dict[str, int]) -> None:
        print("| phase | events sent | answers | events counted |")
        print("|---|---|---|---|")
        for phase in self.phases:
            answers = ", ".join(f"{n} x {status}" for status, n in sorted(self.beacon_statuses[phase].items()))
            print(f"| {phase} | {self.events_sent[phase]:,} | {answers} | {counted.get(phase, 0):,} |")

    def empty_but_wrong(self) -> int:
        return sum(seen["empty-but-wrong"] for seen in self.outcomes.values())


async def counted_events(database_url: str) -> dict[str, int]:
    """`open` events counted per campaign, wherever this checkout's aggregator counts them."""
    conn = await asyncpg.connect(database_url)
    try:
        if await conn.fetchval("SELECT to_regclass('stats_daily') IS NOT NULL"):
            rows = await conn.fetch("SELECT campaign, sum(opens)::bigint AS n FROM stats_daily GROUP BY campaign")
        else:
            rows = await conn.fetch("SELECT campaign, sum(count)::bigint AS n FROM event_counts"
                                    " WHERE kind = 'open' GROUP BY campaign")
        return {row["campaign"]: int(row["n"]) for row in rows}
    finally:
        await conn.close()


async def wait_counted(database_url: str, sent: Counter[str], timeout_s: float) -> dict[str, int]:
    """Counts once every event sent is counted, or once they stopped moving for 8 s (the aggregator
    idles 5 s between empty reads), or at `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, int] = {}
    steady_since = time.monotonic()
    while True:
        found = await counted_events(database_url)
        if all(found.get(phase, 0) >= n for phase, n in sent.items()) or time.monotonic() > deadline:
            return found
        if found != last:
            last, steady_since = found, time.monotonic()
        elif time.monotonic() - steady_since > 8.0:
            return found
        await asyncio.sleep(0.25)


def outage_arguments(doc: str, down_s: float, heal_timeout_s: float) -> argparse.ArgumentParser:
    """The command line both trials take (the first line of `doc` as description)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--before-s", type=float, default=4.0)
    parser.add_argument("--down-s", type=float, default=down_s)
    parser.add_argument("--after-s", type=float, default=3.0)
    parser.add_argument("--heal-timeout-s", type=float, default=heal_timeout_s)
    return parser


class Recovery(NamedTuple):
    back: float
    healed: bool


async def outage(client: httpx.AsyncClient, trial: Trial, phases: tuple[str, str], stop: Callable[[], None],
                 start: Callable[[], None], args: argparse.Namespace) -> Recovery:
    """Load for `before_s`, `stop()` a server for `down_s`, `start()` it, load until healed and `after_s` more."""
    load = [asyncio.create_task(trial.shopper(client, seed)) for seed in range(SHOPPERS)]
    load.append(asyncio.create_task(trial.beacons(client)))
    load.append(asyncio.create_task(trial.ready_probe(client)))
    await asyncio.sleep(args.before_s)
    trial.enter(phases[0])
    # In a thread: the shoppers' loop goes on (blocked, it would add the wait to their latencies).
    await asyncio.to_thread(stop)
    await asyncio.sleep(args.down_s)
    # The phase changes once the server accepts connections: answers meanwhile count as "down".
    await asyncio.to_thread(start)
    trial.enter(phases[1])
    back = time.monotonic()
    for _ in range(int(args.heal_timeout_s * 10)):
        if trial.healed(back, STEADY_S):
            break
        await asyncio.sleep(0.1)
    healed = trial.healed(back, STEADY_S)
    trial.enter("after")
    await asyncio.sleep(args.after_s)
    trial.running = False
    await asyncio.gather(*load)
    return Recovery(back, healed)


def report(trial: Trial, title: str, server: str, recovery: Recovery, counted: dict[str, int]) -> int:
    """Print the trial's tables; the exit status (1: an empty-but-wrong answer, or not healed in time)."""
    first_full, last_not_full = trial.full_again_after(recovery.back)
    print(title + "\n")
    trial.print_answers()
    print()
    for what, value in (("first full answer at a new position", first_full),
                        ("every answer full from", last_not_full if recovery.healed else None),
                        ("/readyz 200 every time from", trial.ready_again_after(recovery.back))):
        print(f"{server} back -> {what}: " + ("never (within the timeout)" if value is None else f"{value:.1f} s"))
    print()
    trial.print_events(counted)
    wrong = trial.empty_but_wrong()
    print(f"\nempty-but-wrong answers: {wrong}")
    return 1 if wrong or not recovery.healed else 0
