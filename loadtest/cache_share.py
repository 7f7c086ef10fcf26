"""Where a server's answers came from (its caches or computed), read from its `/metrics` counters."""

from __future__ import annotations

import re

import httpx

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
