"""SPEC "Data quality", must show: on 50 retailers with planted faults, the check finds every fault and flags
nothing healthy, and /metrics says the same (benchmarks/quality_network.py prints the table)."""

from __future__ import annotations

import asyncpg
import msgspec
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from benchmarks.quality_network import FAULTS, run_network
from cache.keys import Keys
from cache.quality import LINKS_ALERT, REJECTED_ALERT, STALE_AFTER_S
from edge_api.app import create_app
from edge_api.settings import Settings


def _by_retailer(text: str) -> dict[str, dict[str, float]]:
    """gauge name -> retailer -> value (the worst kind of a retailer for the per-kind gauges)."""
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "retailer" in sample.labels:
                per = found.setdefault(sample.name, {})
                per[sample.labels["retailer"]] = max(per.get(sample.labels["retailer"], 0.0), sample.value)
    return found


async def test_every_planted_fault_is_found_nothing_healthy_is_flagged_and_the_gauges_agree(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, settings: Settings
) -> None:
    result = await run_network(db, redis, keys, settings, retailers=50, seed=7)
    rows = {row["retailer"]: row for row in result["rows"]}
    assert len(rows) == 50
    assert {fault for row in rows.values() for fault in row["planted"]} == set(FAULTS)
    healthy = [name for name, row in rows.items() if not row["planted"]]
    assert len(healthy) >= 10 and any(len(row["planted"]) > 1 for row in rows.values())
    assert result["mismatches"] == [], [rows[name] for name in result["mismatches"]]
    assert result["faults_found"] == result["faults_planted"] and result["healthy_flagged"] == 0

    with TestClient(create_app(msgspec.structs.replace(settings, quality_cache_s=0.0))) as client:
        gauges = _by_retailer(client.get("/metrics").text)
    alarms = {
        "stale feed": ("nearcart_feed_age_seconds", STALE_AFTER_S),
        "unconfirmed": ("nearcart_offers_unconfirmed", 0),
        "rejected rows": ("nearcart_feed_rejected_ratio", REJECTED_ALERT),
        "price outliers": ("nearcart_price_outliers", 0),
        "dead links": ("nearcart_basket_links_failing", LINKS_ALERT),
        "approximate stores": ("nearcart_stores_approximate", 0),
    }
    for name, row in rows.items():
        beyond = {fault for fault, (gauge, limit) in alarms.items() if gauges[gauge][name] > limit}
        assert beyond == set(row["planted"]), name
