"""Campaign versions (`campaign_versions`): every save keeps who, when and the whole JSON.

`save_campaign` is the one way the back office and `PUT /admin/v1/campaigns/{id}`
store a campaign. A campaign saved some other way since its last version (`nearcart
campaign push`, or before versions existed) is first adopted into the history as a
version by '' (shown "outside the back office"), so a restore can always go back
to what was live before an edit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from backoffice.records import fetch_records
from edge_api.campaign_store import store_campaign
from edge_api.schemas import Campaign

# The latest version's body differs from the live one, or no version exists: snapshot the live body.
_SNAPSHOT = """
INSERT INTO campaign_versions (campaign_id, version, author, saved_at, body, restored_from)
SELECT c.id, COALESCE(v.version, 0) + 1, $2, CASE WHEN $4 THEN c.updated_at ELSE now() END, c.body, $3
FROM campaigns c
LEFT JOIN LATERAL (
    SELECT version, body FROM campaign_versions WHERE campaign_id = c.id ORDER BY version DESC LIMIT 1
) v ON true
WHERE c.id = $1 AND (v.body IS NULL OR v.body <> c.body)
RETURNING version
"""


@dataclass(frozen=True, slots=True)
class Version:
    version: int
    author: str
    saved_at: datetime
    restored_from: int | None
    body: Any = None


async def lock_campaign(conn: asyncpg.Connection, campaign_id: str) -> None:
    """Serialise the writers of one campaign until the transaction ends (same lock as the admin API's PUT)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('campaign:' || $1))", campaign_id)


async def save_campaign(
    conn: asyncpg.Connection, campaign: Campaign, author: str, timeout_s: float, restored_from: int | None = None
) -> tuple[str, int | None]:
    """Store a campaign and keep it as a new version: (ETag, version number, None when nothing changed)."""
    async with conn.transaction():
        await lock_campaign(conn, campaign.id)
        await conn.fetchval(_SNAPSHOT, campaign.id, "", None, True)
        etag = await store_campaign(conn, campaign, timeout_s)
        version: int | None = await conn.fetchval(_SNAPSHOT, campaign.id, author, restored_from, False)
    return etag, version


async def list_versions(conn: asyncpg.Connection | asyncpg.Pool, campaign_id: str) -> list[Version]:
    return await fetch_records(
        conn, Version,
        "SELECT version, author, saved_at, restored_from FROM campaign_versions WHERE campaign_id = $1"
        " ORDER BY version DESC",
        campaign_id,
    )


async def get_version(conn: asyncpg.Connection | asyncpg.Pool, campaign_id: str, version: int) -> Version | None:
    row = await conn.fetchrow(
        "SELECT version, author, saved_at, restored_from, body::text AS body FROM campaign_versions"
        " WHERE campaign_id = $1 AND version = $2",
        campaign_id,
        version,
    )
    if row is None:
        return None
    return Version(row["version"], row["author"], row["saved_at"], row["restored_from"], json.loads(row["body"]))
