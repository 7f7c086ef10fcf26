"""What the lifespan opens once per worker and every request uses: clients, pools, readers, caches.

The lifespan yields one typed `EdgeState` as `edge`; routes read it through
`edge_state(request)`, ASGI code (the offers front, middleware) through `state_of(scope)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from starlette.requests import HTTPConnection
from starlette.types import Scope

if TYPE_CHECKING:  # annotations only: the modules named here import this one
    import asyncpg
    import redis.asyncio as aioredis

    from cache.index_reader import DeliveryHit, IndexReader
    from cache.keys import Keys
    from edge_api.campaign_store import CampaignStore
    from edge_api.draining import Drain
    from edge_api.event_buffer import EventBuffer
    from edge_api.locate import DeliveryZoneCache
    from edge_api.micro_cache import MicroCache
    from edge_api.offers_front import FrontEntry
    from edge_api.rank import Ranker
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
    # Whole answers to byte-identical requests (edge_api.offers_front.OffersFront).
    front_cache: MicroCache[FrontEntry]
    zones: DeliveryZoneCache
    # Each product's delivery offers, by GTIN, under the index stamp they were read at.
    delivery_cache: MicroCache[list[DeliveryHit]]
    # Chooses, orders and encodes offers; owns the encoded pieces and signed links it reuses (edge_api.rank).
    ranker: Ranker
    # Set on SIGTERM: /readyz answers 503 while the worker still serves (edge_api.draining).
    drain: Drain

    def as_lifespan_state(self) -> dict[str, Any]:
        """The dict the lifespan yields (Starlette copies it into every request's state)."""
        return {"edge": self}


def edge_state(conn: HTTPConnection) -> EdgeState:
    return cast(EdgeState, conn.state.edge)


def state_of(scope: Scope) -> EdgeState | None:
    """The worker's state from an ASGI scope; None outside a lifespan (an app started without one)."""
    state = scope.get("state")
    return cast(EdgeState, state.get("edge")) if state else None
