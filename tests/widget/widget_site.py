"""What the browser tests and their fixtures share: where things are and who the shopper is."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_api.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
WIDGET = ROOT / "widget"
PAGES = Path(__file__).parent / "pages"
GTIN = "3017620422003"
# A Paris 13e address in the bundled GeoLite2 data; the API believes X-Forwarded-For from 127.0.0.1 (the "CDN").
SHOPPER_IP = "88.160.0.1"


@dataclass(frozen=True)
class Site:
    api: str  # the nearcart API, as `nearcart serve` answers it
    brand: str  # the brand's own site, another origin
    campaign: str
    settings: Settings  # the served nearcart's: its database and Redis prefix


def run_async(coro: Coroutine[Any, Any, None]) -> None:
    """asyncio.run in a thread of its own: sync Playwright keeps an event loop running in this one."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:  # handed back to the caller below
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
