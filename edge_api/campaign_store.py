"""Campaigns in PostgreSQL: storing one, and each worker's short-lived copy of those it serves.

Edge workers keep campaigns in memory for a few seconds: an offers answer, a click or
a CORS check does not cost a PostgreSQL round trip.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from edge_api.schemas import Campaign, public_part

CACHE_TTL_S = 5.0
# Past its TTL a kept campaign is still served while one background read refreshes it; past
# this age (PostgreSQL unreachable all along) requests wait for PostgreSQL again.
CACHE_STALE_S = 300.0
CACHE_LIMIT = 10_000
_public_encoder = msgspec.json.Encoder(order="deterministic")


def public_json(campaign: Campaign) -> bytes:
    return _public_encoder.encode(public_part(campaign))


def etag_of(public: bytes) -> str:
    return '"' + hashlib.sha256(public).hexdigest()[:20] + '"'


async def store_campaign(conn: asyncpg.Connection | asyncpg.Pool, campaign: Campaign, timeout_s: float) -> str:
    """Insert or replace a campaign; return its ETag."""
    etag = etag_of(public_json(campaign))
    await conn.execute(
        "INSERT INTO campaigns (id, brand, body, etag, updated_at) VALUES ($1, $2, $3::jsonb, $4, now())"
        " ON CONFLICT (id) DO UPDATE SET brand = EXCLUDED.brand, body = EXCLUDED.body, etag = EXCLUDED.etag,"
        " updated_at = now()",
        campaign.id,
        campaign.brand,
        msgspec.json.encode(campaign).decode(),
        etag,
        timeout=timeout_s,
    )
    return etag


def _ignore_failure(task: asyncio.Future[Any]) -> None:
    # A failed background refresh keeps the stale entry; the next request past its TTL tries again.
    if not task.cancelled():
        task.exception()


@dataclass(frozen=True, slots=True)
class StoredCampaign:
    campaign: Campaign
    public: bytes
    etag: str


class CampaignStore:
    """Campaigns read from PostgreSQL, kept per worker for `ttl_s` (misses too, so unknown ids stay cheap).

    A kept campaign past its TTL is served as it is while a single background read refreshes
    it (stale-while-revalidate): no request waits for PostgreSQL on a campaign already known,
    and a PostgreSQL hiccup does not turn a launch's traffic into 503s. Concurrent first
    reads of one campaign share one query.
    """

    def __init__(self, pool: asyncpg.Pool, timeout_s: float, ttl_s: float = CACHE_TTL_S,
                 stale_s: float = CACHE_STALE_S) -> None:
        self.pool = pool
        self.timeout_s = timeout_s
        self.ttl_s = ttl_s
        self.stale_s = stale_s
        # id -> (fresh until, campaign or None for "no such campaign")
        self._cache: dict[str, tuple[float, StoredCampaign | None]] = {}
        self._loading: dict[str, asyncio.Future[StoredCampaign | None]] = {}
        self._origins: tuple[float, frozenset[str]] = (0.0, frozenset())

    async def get(self, campaign_id: str) -> StoredCampaign | None:
        hit = self._servable(campaign_id)
        if hit is not None:
            return hit[1]
        return await asyncio.shield(self._loading.get(campaign_id) or self._load(campaign_id))

    def known_etag(self, campaign_id: str) -> str | None:
        """The campaign's ETag as this worker knows it, without waiting; None if it knows none.

        For answers kept with the campaign they were computed for: they hold while this says
        the same. Past the TTL a background read refreshes it, as `get` does, so a pushed
        change is seen within about `ttl_s` even while every request is answered from a cache.
        """
        hit = self._servable(campaign_id)
        return hit[1].etag if hit is not None and hit[1] is not None else None

    def _servable(self, campaign_id: str) -> tuple[float, StoredCampaign | None] | None:
        """The kept entry if it may still be served (past its TTL, a background read refreshes it), else None."""
        hit = self._cache.get(campaign_id)
        if hit is None:
            return None
        now = time.monotonic()
        if hit[0] <= now:
            if now - hit[0] >= self.stale_s:
                return None
            if campaign_id not in self._loading:
                self._load(campaign_id).add_done_callback(_ignore_failure)
        return hit

    def _load(self, campaign_id: str) -> asyncio.Future[StoredCampaign | None]:
        """One read of `campaign_id` from PostgreSQL, shared by everyone who asks meanwhile."""
        task = asyncio.ensure_future(self._read(campaign_id))
        self._loading[campaign_id] = task
        task.add_done_callback(lambda _: self._loading.pop(campaign_id, None))
        return task

    async def _read(self, campaign_id: str) -> StoredCampaign | None:
        async with asyncio.timeout(self.timeout_s):
            row = await self.pool.fetchrow("SELECT body::text AS body, etag FROM campaigns WHERE id = $1", campaign_id)
        found = None
        if row is not None:
            campaign = msgspec.json.decode(row["body"], type=Campaign)
            found = StoredCampaign(campaign, public_json(campaign), row["etag"])
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[campaign_id] = (time.monotonic() + self.ttl_s, found)
        return found

    async def any_origins(self) -> frozenset[str]:
        """Origins allowed by at least one campaign (for requests that name no campaign)."""
        now = time.monotonic()
        if self._origins[0] > now:
            return self._origins[1]
        async with asyncio.timeout(self.timeout_s):
            rows = await self.pool.fetch(
                "SELECT DISTINCT jsonb_array_elements_text(body->'allowed_origins') AS origin FROM campaigns"
            )
        origins = frozenset(row["origin"] for row in rows)
        self._origins = (now + self.ttl_s, origins)
        return origins

    async def origin_allowed(self, origin: str, campaign_id: str | None) -> bool:
        if campaign_id:
            stored = await self.get(campaign_id)
            allowed = frozenset(stored.campaign.allowed_origins) if stored else frozenset()
        else:
            allowed = await self.any_origins()
        return "*" in allowed or origin in allowed
