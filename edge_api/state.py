"""What the lifespan opens once per worker and every request uses: clients, pools, readers.

Routes read it as `request.state.<name>` (Starlette copies the lifespan's dict
into each request) or, typed, through `edge_state(request)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import asyncpg
import redis.asyncio as aioredis
from starlette.requests import HTTPConnection

from cache.index_reader import DeliveryHit, IndexReader
from cache.keys import Keys
from edge_api.campaigns import CampaignStore
from edge_api.event_buffer import EventBuffer
from edge_api.micro_cache import MicroCache
from edge_api.offer_json import OfferPieces
from edge_api.offers import DeliveryZoneCache, FrontEntry
from edge_api.ratelimit import RateLimiter
from edge_api.settings import Settings
from geo.geoip import GeoIP


@dataclass(frozen=True, slots=True)
class EdgeState:
    settings: Settings
    keys: Keys
    redis: aioredis.Redis
    db: asyncpg.Pool
    geoip: GeoIP | None
    index: IndexReader
    campaigns: CampaignStore
    events_limiter: RateLimiter
    # Events and clicks on their way to the stream, kept here while Redis is unreachable.
    event_buffer: EventBuffer
    # For /v1/offers: cached answers (see edge_api.micro_cache), delivery zones rebuilt when the directory moves.
    micro_cache: MicroCache[bytes]
    # Whole answers to byte-identical requests (edge_api.offers.OffersFront).
    front_cache: MicroCache[FrontEntry]
    zones: DeliveryZoneCache
    # Each product's delivery offers, by GTIN, under the index stamp they were read at.
    delivery_cache: MicroCache[list[DeliveryHit]]
    # Encoded stores and retailers of offers answers (edge_api.offer_json).
    offer_pieces: OfferPieces

    def as_lifespan_state(self) -> dict[str, Any]:
        """The dict the lifespan yields: each object by name, and this whole typed object as `edge`."""
        return {"edge": self, **{name: getattr(self, name) for name in self.__dataclass_fields__}}


def edge_state(conn: HTTPConnection) -> EdgeState:
    return cast(EdgeState, conn.state.edge)
