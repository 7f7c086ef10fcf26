"""SIGTERM to a real `nearcart serve` under a client loop: not ready first, then drained, no answer lost.

What is asserted, and why. Clients open a new connection per request (as a load balancer's
retries would), from four threads, while a fifth polls /readyz. After SIGTERM the worker:
- answers /readyz 503 while it still answers offers 200, for NEARCART_SHUTDOWN_DRAIN_S (1 s
  here): the balancer's probe takes it out before anything is refused;
- then stops listening and finishes what it accepted: every request sent before the drain
  ended got a whole 200 answer. A request sent later may find the port closed (refused, or
  reset before any byte of answer when it raced the close): it never reached the app, and a
  balancer retries it elsewhere. Nothing else may happen: no 5xx, no answer cut short;
- exits within uvicorn's graceful timeout, cleanly (uvicorn re-raises the SIGTERM it handled).
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

import asyncpg
import msgspec
import redis.asyncio as aioredis

from cache.embedded import free_port
from cache.index import build_index
from cache.keys import Keys
from edge_api.settings import Settings
from loadtest.stack import _bin, settings_env, wait_ready
from tests.random_catalog import write_random_catalog

DRAIN_S = 1.0


@dataclass
class Outcome:
    sent_at: float
    result: str  # "200", another status, "refused" (never connected or reset before any answer), "broken"


def _ask(port: int, path: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.connect()
    except ConnectionRefusedError:
        return "refused"
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        body = response.read()
        if response.status == 200 and len(body) != int(response.getheader("content-length", "-1")):
            return "broken"
        return str(response.status)
    except (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError):
        # Accepted by the kernel, closed before the app answered anything: the listener went away.
        return "refused"
    except (http.client.IncompleteRead, OSError):
        return "broken"
    finally:
        connection.close()


async def test_sigterm_stops_readiness_then_drains_without_failing_a_request(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, settings: Settings
) -> None:
    catalog = await write_random_catalog(db, seed=31, stores=300, gtins=3)
    await build_index(db, redis, keys, grace_s=0)
    settings = msgspec.structs.replace(settings, shutdown_drain_s=DRAIN_S, aggregate_events=False, log_level="warning")
    _run(settings, catalog.gtins)


def _run(settings: Settings, gtins: list[str]) -> None:
    port = free_port()
    command = [_bin("nearcart"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    process = subprocess.Popen(command, env=settings_env(settings), start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}", "/readyz", process)
        offers: list[Outcome] = []
        probes: list[Outcome] = []
        stop = threading.Event()

        def shopper(n: int) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                path = f"/v1/offers?gtin={gtins[i % 3]}&lat={48.6 + (i % 700) * 0.001 + n * 1e-5:.5f}&lon=2.35"
                sent = time.monotonic()
                offers.append(Outcome(sent, _ask(port, path)))

        def prober() -> None:
            while not stop.is_set():
                probes.append(Outcome(time.monotonic(), _ask(port, "/readyz")))
                time.sleep(0.05)

        threads = [threading.Thread(target=shopper, args=(n,)) for n in range(4)] + [threading.Thread(target=prober)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        signalled = time.monotonic()
        os.kill(process.pid, signal.SIGTERM)
        status = process.wait(timeout=DRAIN_S + 10)
        exited = time.monotonic()
        time.sleep(0.2)
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    # uvicorn re-raises the signal it handled once it has shut down: "ended by SIGTERM" is its clean exit.
    assert status in (0, -signal.SIGTERM)
    before_drain_ended = [o for o in offers if o.sent_at < signalled + DRAIN_S * 0.9]
    during_drain = [o for o in before_drain_ended if o.sent_at > signalled]
    assert during_drain and all(o.result == "200" for o in before_drain_ended), \
        {o.result for o in before_drain_ended}
    assert {o.result for o in offers} <= {"200", "refused"}, {o.result for o in offers}
    not_ready = [p for p in probes if p.sent_at > signalled and p.result == "503"]
    assert not_ready, [p.result for p in probes if p.sent_at > signalled]
    first_refused = min((o.sent_at for o in offers + probes if o.result == "refused"), default=exited)
    # Out of the balancer's rotation (503) before any connection was refused.
    assert not_ready[0].sent_at < first_refused
    assert exited - signalled < DRAIN_S + 6
    print(f"\nshutdown: {len(offers)} offers requests, {len(during_drain)} answered while draining, "
          f"{sum(o.result == 'refused' for o in offers)} refused after {first_refused - signalled:.2f} s, "
          f"exit {exited - signalled:.2f} s after SIGTERM")
