"""Each feed run, per retailer: what it read and rejected, and whether it succeeded (SPEC "Data quality").

Written when a run is recorded, so a feed's age on `/metrics` is right at once, not only after the
next `nearcart quality check`. A run succeeds for a retailer when it was not stopped and at least
one of that retailer's rows was accepted; a pull the retailer's server answered 304 succeeds too
(our copy is the current one).
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

# The retailers kind is the operator's list of retailers, not a feed of one retailer.
RETAILER_KINDS = ("stores", "offers", "products")

_RECORD = """
WITH counts AS (
    SELECT c.retailer_id, c.rows_read, c.rows_rejected
    FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS c (retailer_id, rows_read, rows_rejected)
    JOIN retailers r USING (retailer_id)
), kept AS (
    INSERT INTO feed_run_retailers (run_id, retailer_id, rows_read, rows_rejected)
    SELECT $1, retailer_id, rows_read, rows_rejected FROM counts
    ON CONFLICT DO NOTHING
)
INSERT INTO retailer_feed_health AS h (retailer_id, kind, last_run_at, last_success_at, rejected_ratio)
SELECT retailer_id, $5, now(),
    CASE WHEN $6 AND (rows_read > rows_rejected OR rows_read = 0) THEN now() END,
    CASE WHEN rows_read > 0 THEN rows_rejected::float8 / rows_read ELSE 0 END
FROM counts
ON CONFLICT (retailer_id, kind) DO UPDATE SET
    last_run_at = excluded.last_run_at,
    last_success_at = coalesce(excluded.last_success_at, h.last_success_at),
    -- A run that read nothing of this retailer (a 304, a failed download) keeps the last ratio.
    rejected_ratio = CASE WHEN (SELECT rows_read FROM counts c WHERE c.retailer_id = h.retailer_id) > 0
                          THEN excluded.rejected_ratio ELSE h.rejected_ratio END
"""


async def record_feed_health(
    conn: asyncpg.Connection,
    run_id: int,
    kind: str,
    rows: Mapping[str, int],
    rejected: Mapping[str, int],
    stopped: bool,
) -> None:
    """Record run `run_id`'s rows per retailer; `stopped`: the run failed as a whole (nothing usable).

    A retailer with zero rows read counts as a success unless `stopped` (a 304 from its server).
    Ids that are no retailer (a typo in a feed, rows naming none) are left out.
    """
    if kind not in RETAILER_KINDS or not rows:
        return
    names = [name for name in rows if name]
    await conn.execute(
        _RECORD, run_id, names, [rows[n] for n in names], [rejected.get(n, 0) for n in names], kind, not stopped
    )
