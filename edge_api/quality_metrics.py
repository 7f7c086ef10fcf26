"""The data-quality gauges on `/metrics` (SPEC "Data quality"), read from what the quality check stored.

Every worker exports the same figures (the alert rules take the max per retailer), so each
reads PostgreSQL at most once per `NEARCART_QUALITY_CACHE_S` however often it is scraped, and
keeps the last figures when the database does not answer. Feed ages grow between two reads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import asyncpg
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cache.db import DATABASE_UNAVAILABLE
from cache.quality import RetailerQuality, read_quality

# The per-retailer gauges: name, help, the figure.
_PER_RETAILER: tuple[tuple[str, str, Callable[[RetailerQuality], float]], ...] = (
    ("nearcart_offers_unconfirmed", "In-stock offers not updated for longer than the threshold",
     lambda q: q.offers_unconfirmed),
    ("nearcart_price_outliers", "Offers priced beyond 3x or below a third of the GTIN's median across retailers",
     lambda q: q.price_outliers),
    ("nearcart_basket_links_failing", "Share (0 to 1) of the sampled basket links that fail",
     lambda q: q.links_failing_ratio),
    ("nearcart_stores_approximate", "Stores placed at their postal code's centre", lambda q: q.stores_approximate),
)


class QualityGauges(Collector):
    def __init__(self) -> None:
        self.figures: list[RetailerQuality] = []
        self.read_at = -1e18
        self.source: object = None
        self.reading = False

    async def refresh(self, pool: asyncpg.Pool, max_age_s: float, timeout_s: float) -> None:
        """Read the stored figures again if they are older than `max_age_s` (or from another database)."""
        if self.reading or (pool is self.source and time.monotonic() - self.read_at < max_age_s):
            return  # fresh enough, or another scrape is reading them: it serves the last figures meanwhile
        self.reading = True
        try:
            async with asyncio.timeout(timeout_s):
                figures = await read_quality(pool)
        except DATABASE_UNAVAILABLE:
            if pool is not self.source:
                self.figures = []
        else:
            self.figures = figures
        finally:
            self.reading = False
        # Failed or not, the next read waits its turn: a down database is not asked at every scrape.
        self.source, self.read_at = pool, time.monotonic()

    def collect(self) -> Iterator[Metric]:
        since_read = max(0.0, time.monotonic() - self.read_at) if self.figures else 0.0
        age = GaugeMetricFamily(
            "nearcart_feed_age_seconds", "Seconds since the retailer's last successful feed run of this kind",
            labels=["retailer", "kind"],
        )
        rejected = GaugeMetricFamily(
            "nearcart_feed_rejected_ratio", "Share (0 to 1) of rows rejected in the last feed run that had rows",
            labels=["retailer", "kind"],
        )
        trend = GaugeMetricFamily(
            "nearcart_feed_rejected_ratio_trend",
            "Last run's rejected share minus the mean of the runs before it (positive: getting worse)",
            labels=["retailer", "kind"],
        )
        families = [
            (GaugeMetricFamily(name, text, labels=["retailer"]), figure) for name, text, figure in _PER_RETAILER
        ]
        for quality in self.figures:
            for feed in quality.feeds:
                age.add_metric([quality.retailer_id, feed.kind], feed.age_s + since_read)
                rejected.add_metric([quality.retailer_id, feed.kind], feed.rejected_ratio)
                trend.add_metric([quality.retailer_id, feed.kind], feed.rejected_trend)
            if quality.checked_at is None:
                continue  # never checked: no figure rather than a reassuring zero
            for family, figure in families:
                family.add_metric([quality.retailer_id], figure(quality))
        yield age
        yield rejected
        yield trend
        yield from (family for family, _ in families)


GAUGES = QualityGauges()
REGISTRY.register(GAUGES)
