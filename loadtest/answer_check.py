"""Wrong answers cannot pass as fast ones: a few sample queries must get real offers before a row is measured."""

from __future__ import annotations

import httpx

from loadtest.bench_data import LoadData, sample_queries


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
