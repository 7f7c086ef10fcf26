"""One `nearcart serve` on the demo catalog for every load-test module (loading the catalog takes seconds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edge_api.settings import Settings
from loadtest.stack import demo_settings, serve_nearcart


@pytest.fixture(scope="package")
def demo(services: tuple[str, str]) -> Iterator[Settings]:
    # The load generators stand in for the CDN/proxy: their X-Forwarded-For carries the shoppers' IPs.
    with demo_settings(services, trusted_proxies=("127.0.0.1/32",)) as settings:
        yield settings


@pytest.fixture(scope="package")
def server(demo: Settings) -> Iterator[str]:
    with serve_nearcart(demo) as url:
        yield url
