"""SIGTERM: stop being ready first, keep answering a while, then let uvicorn drain and exit.

uvicorn, on SIGTERM, stops listening at once, lets requests in flight finish (within
`timeout_graceful_shutdown`), closes idle keep-alive connections and exits. A load balancer
that has not yet noticed would then send new connections to a closed port. With
`NEARCART_SHUTDOWN_DRAIN_S` the worker first answers `/readyz` 503 while still serving
everything for that many seconds, so the balancer's readiness probe takes it out, and only
then hands the signal to uvicorn. (On Kubernetes the preStop pause does the same from outside.)
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType
from typing import Any

log = logging.getLogger("nearcart.shutdown")


class Drain:
    """Whether this worker is shutting down; installed over uvicorn's SIGTERM handler by the lifespan."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.active = False

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            previous: Any = signal.getsignal(signal.SIGTERM)
        except ValueError:
            return
        if not callable(previous):
            return  # not under a server that handles SIGTERM (tests' TestClient): nothing to delay

        def on_term(sig: int, frame: FrameType | None) -> None:
            if self.active:
                previous(sig, frame)  # a second SIGTERM: no more waiting
                return
            self.active = True
            log.info("SIGTERM: not ready any more, serving %.1f s before shutting down", self.delay_s)
            loop.call_soon_threadsafe(loop.call_later, self.delay_s, previous, sig, None)

        try:
            signal.signal(signal.SIGTERM, on_term)
        except ValueError:
            pass  # not the main thread: a test's app; the server's own handling applies
