"""Data quality per retailer (SPEC "Data quality"): computed from the catalog, stored, read back.

`nearcart quality check` calls `catalog_figures` (one pass of SQL per figure over the catalog),
adds the basket-link sample it fetched, and `store_figures` keeps the result in
`retailer_quality`; feed figures live in `retailer_feed_health`, kept by every feed run.
`/metrics` and the back office only ever read `read_quality`'s stored rows.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

# SPEC: a price beyond 3x, or below a third of, the median price of the same GTIN across retailers.
OUTLIER_FACTOR = 3.0
# A median needs this many retailers selling the GTIN (in one currency): with two, which one is wrong?
OUTLIER_MIN_RETAILERS = 3
# Runs before the last one that its rejected share is compared with (the trend).
TREND_RUNS = 10
# The thresholds of docker/kubernetes/base/alerts.rules.yaml, so the back office flags what pages an SRE.
STALE_AFTER_S = 26 * 3600
REJECTED_ALERT = 0.1
LINKS_ALERT = 0.05


class LinkFailure(msgspec.Struct, frozen=True):
    url: str
    reason: str


class FeedHealth(msgspec.Struct, frozen=True):
    kind: str
    # None: no successful run yet (the age then counts from the first run or the feed's setup).
    last_success_at: datetime | None
    age_s: float
    rejected_ratio: float
    rejected_trend: float


class RetailerQuality(msgspec.Struct, kw_only=True):
    retailer_id: str
    name: str = ""
    checked_at: datetime | None = None
    offers: int = 0
    offers_unconfirmed: int = 0
    price_outliers: int = 0
    stores: int = 0
    stores_approximate: int = 0
    links_checked: int = 0
    links_failing: int = 0
    link_failures: list[LinkFailure] = msgspec.field(default_factory=list)
    feeds: list[FeedHealth] = msgspec.field(default_factory=list)

    @property
    def links_failing_ratio(self) -> float:
        """The share (0 to 1) of sampled links that failed: what the alert rule reads."""
        return self.links_failing / self.links_checked if self.links_checked else 0.0

    @property
    def problems(self) -> int:
        """How many kinds of fault this retailer shows now (the back office sorts worst first)."""
        return sum((
            self.offers_unconfirmed > 0, self.price_outliers > 0, self.stores_approximate > 0,
            self.links_failing > 0, any(f.age_s > STALE_AFTER_S for f in self.feeds),
            any(f.rejected_ratio > REJECTED_ALERT for f in self.feeds),
        ))


_COUNTS = """
SELECT r.retailer_id,
    (SELECT count(*) FROM offers o WHERE o.retailer_id = r.retailer_id AND o.quantity > 0) AS offers,
    (SELECT count(*) FROM offers o WHERE o.retailer_id = r.retailer_id AND o.quantity > 0
        AND o.updated_at < now() - $1 * interval '1 second') AS offers_unconfirmed,
    (SELECT count(*) FROM stores s WHERE s.retailer_id = r.retailer_id) AS stores,
    (SELECT count(*) FROM stores s WHERE s.retailer_id = r.retailer_id AND s.approximate) AS stores_approximate
FROM retailers r
"""

# Each retailer's own median per GTIN first, so a retailer with 500 stores weighs as one.
_OUTLIERS = """
WITH per_retailer AS (
    SELECT gtin, currency, retailer_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY price) AS price
    FROM offers WHERE quantity > 0 GROUP BY gtin, currency, retailer_id
), medians AS (
    SELECT gtin, currency, percentile_cont(0.5) WITHIN GROUP (ORDER BY price) AS median
    FROM per_retailer GROUP BY gtin, currency HAVING count(*) >= $2
)
SELECT o.retailer_id, count(*) AS outliers
FROM offers o JOIN medians m ON m.gtin = o.gtin AND m.currency = o.currency
WHERE o.quantity > 0 AND (o.price > $1 * m.median OR o.price * $1 < m.median)
GROUP BY o.retailer_id
"""

_TREND = """
WITH ranked AS (
    SELECT h.retailer_id, h.kind, fr.rows_rejected::float8 / fr.rows_read AS ratio,
        row_number() OVER (PARTITION BY h.retailer_id, h.kind ORDER BY f.id DESC) AS n
    FROM retailer_feed_health h
    JOIN feed_run_retailers fr ON fr.retailer_id = h.retailer_id
    JOIN feed_runs f ON f.id = fr.run_id AND f.kind = h.kind
    -- A month of runs is plenty for ten per feed, and keeps the check's cost flat as history grows.
    WHERE fr.rows_read > 0 AND f.started_at > now() - interval '30 days'
), trend AS (
    SELECT retailer_id, kind,
        coalesce(max(ratio) FILTER (WHERE n = 1) - avg(ratio) FILTER (WHERE n > 1), 0) AS trend
    FROM ranked WHERE n <= $1 + 1 GROUP BY retailer_id, kind
)
UPDATE retailer_feed_health h SET rejected_trend = t.trend
FROM trend t WHERE t.retailer_id = h.retailer_id AND t.kind = h.kind
"""


async def catalog_figures(conn: asyncpg.Connection, unconfirmed_after_s: int) -> dict[str, RetailerQuality]:
    """Every retailer's figures from the catalog (the link sample is the caller's), trends updated."""
    figures = {
        row["retailer_id"]: RetailerQuality(**dict(row))
        for row in await conn.fetch(_COUNTS, float(unconfirmed_after_s))
    }
    for row in await conn.fetch(_OUTLIERS, OUTLIER_FACTOR, OUTLIER_MIN_RETAILERS):
        if row["retailer_id"] in figures:
            figures[row["retailer_id"]].price_outliers = row["outliers"]
    await conn.execute(_TREND, TREND_RUNS)
    return figures


async def store_figures(conn: asyncpg.Connection, figures: list[RetailerQuality]) -> None:
    """Replace the stored figures of these retailers (one transaction: /metrics never reads half a check)."""
    async with conn.transaction():
        await conn.executemany(
            "INSERT INTO retailer_quality (retailer_id, checked_at, offers, offers_unconfirmed, price_outliers,"
            " stores, stores_approximate, links_checked, links_failing, link_failures)"
            " VALUES ($1, now(), $2, $3, $4, $5, $6, $7, $8, $9::jsonb)"
            " ON CONFLICT (retailer_id) DO UPDATE SET checked_at = excluded.checked_at, offers = excluded.offers,"
            " offers_unconfirmed = excluded.offers_unconfirmed, price_outliers = excluded.price_outliers,"
            " stores = excluded.stores, stores_approximate = excluded.stores_approximate,"
            " links_checked = excluded.links_checked, links_failing = excluded.links_failing,"
            " link_failures = excluded.link_failures",
            [
                (f.retailer_id, f.offers, f.offers_unconfirmed, f.price_outliers, f.stores, f.stores_approximate,
                 f.links_checked, f.links_failing, msgspec.json.encode(f.link_failures).decode())
                for f in figures
            ],
        )


_READ = """
SELECT r.retailer_id, r.name, q.checked_at, coalesce(q.offers, 0) AS offers,
    coalesce(q.offers_unconfirmed, 0) AS offers_unconfirmed, coalesce(q.price_outliers, 0) AS price_outliers,
    coalesce(q.stores, 0) AS stores, coalesce(q.stores_approximate, 0) AS stores_approximate,
    coalesce(q.links_checked, 0) AS links_checked, coalesce(q.links_failing, 0) AS links_failing,
    coalesce(q.link_failures, '[]'::jsonb)::text AS link_failures
FROM retailers r LEFT JOIN retailer_quality q USING (retailer_id)
WHERE $1::text IS NULL OR r.retailer_id = $1
ORDER BY r.retailer_id
"""

# Age since the last success, else since the feed was first seen (run or pull set up): never less.
_READ_FEEDS = """
SELECT retailer_id, kind, last_success_at,
    extract(epoch FROM now() - coalesce(last_success_at, first_seen_at))::float8 AS age_s,
    rejected_ratio, rejected_trend
FROM (
    SELECT h.retailer_id, h.kind, h.last_success_at, h.first_seen_at, h.rejected_ratio, h.rejected_trend
    FROM retailer_feed_health h
    UNION ALL
    SELECT f.retailer_id, f.kind, NULL, f.created_at, 0, 0 FROM retailer_feeds f
    WHERE NOT EXISTS (SELECT 1 FROM retailer_feed_health h WHERE h.retailer_id = f.retailer_id AND h.kind = f.kind)
) feeds
WHERE $1::text IS NULL OR retailer_id = $1
ORDER BY retailer_id, kind
"""


async def read_quality(
    conn: asyncpg.Connection | asyncpg.Pool, retailer_id: str | None = None
) -> list[RetailerQuality]:
    """The stored figures of every retailer (or one), feed ages as of now; retailers never checked show zeros."""
    feeds: dict[str, list[FeedHealth]] = {}
    for row in await conn.fetch(_READ_FEEDS, retailer_id):
        feeds.setdefault(row["retailer_id"], []).append(FeedHealth(
            row["kind"], row["last_success_at"], max(0.0, row["age_s"]), row["rejected_ratio"], row["rejected_trend"]
        ))
    found = []
    for row in await conn.fetch(_READ, retailer_id):
        values = dict(row)
        values["link_failures"] = msgspec.json.decode(values["link_failures"], type=list[LinkFailure])
        found.append(RetailerQuality(**values, feeds=feeds.get(row["retailer_id"], [])))
    return found
