"""The edge API: routes, middleware and the lifespan that opens what they share. Nothing else."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, StatefulLifespan

from backoffice import routes as backoffice
from backoffice.aggregator import aggregate_forever
from backoffice.state import office_lifespan
from cache import db as catalog_db
from cache.db import DATABASE_UNAVAILABLE
from cache.index_healer import IndexHealer
from cache.index_reader import IndexReader
from cache.keys import Keys
from cache.redis_topology import RedisTopology
from cache.replicas import ReplicaSet
from cache.tasks import stop_task
from edge_api import admin, admin_feeds, campaigns, clicks, events, gc_policy, health, offers, openapi, pages
from edge_api.body_limits import BodyLimits, with_feed_upload_cap
from edge_api.campaign_store import CampaignStore
from edge_api.cors import CampaignCORSMiddleware
from edge_api.draining import Drain
from edge_api.errors import error_response, server_error
from edge_api.event_buffer import EventBuffer
from edge_api.http_metrics import MetricsMiddleware
from edge_api.locate import DeliveryZoneCache
from edge_api.micro_cache import MicroCache
from edge_api.offer_json import OfferPieces
from edge_api.offers_front import OffersFront
from edge_api.rank import Ranker
from edge_api.ratelimit import RateLimiter
from edge_api.settings import Settings, load_settings
from edge_api.state import EdgeState
from edge_api.strict_routes import strict_paths
from geo.geoip import GeoIP


def redis_client(settings: Settings, topology: RedisTopology | None = None) -> aioredis.Redis:
    # No retries: a slow Redis must cost a request its timeout once, not three times.
    return (topology or RedisTopology.from_settings(settings)).client(
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
    )


async def database_pool(settings: Settings) -> asyncpg.Pool:
    try:
        return await catalog_db.create_pool(settings.database_url, timeout_s=settings.database_timeout_s)
    except DATABASE_UNAVAILABLE:
        # Start anyway with an empty pool: /readyz reports PostgreSQL until it comes back.
        return await catalog_db.create_pool(settings.database_url, timeout_s=settings.database_timeout_s, min_size=0)


def make_lifespan(settings: Settings) -> StatefulLifespan[Starlette]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        keys = Keys(settings.redis_prefix)
        topology = RedisTopology.from_settings(settings)
        redis = redis_client(settings, topology)
        pool = await database_pool(settings)
        geoip = GeoIP(settings.geoip_db)
        pipe = topology.pipe()
        replicas = (ReplicaSet(settings.redis_replica_urls, redis, keys, settings.redis_timeout_s)
                    if settings.redis_replica_urls else None)
        index = IndexReader(redis, keys, pipe, changes_client=topology.feed_client, replicas=replicas)
        await index.start()
        # One worker rebuilds a missing index by itself (Redis restarted empty, a failover to a bare replica),
        # or one that lost writes (an ingest's Redis writes failed, a failover to a replica that missed them).
        healer = IndexHealer(topology, settings.database_url, keys, check_s=settings.index_check_s,
                             grace_s=settings.index_grace_s, pool=pool)
        if settings.index_check_s > 0:
            healer.start()
        state = EdgeState(
            settings=settings,
            keys=keys,
            redis=redis,
            db=pool,
            geoip=geoip,
            index=index,
            campaigns=CampaignStore(pool, settings.database_timeout_s),
            events_limiter=RateLimiter(redis, keys, settings.events_per_minute),
            event_buffer=EventBuffer(redis, keys, flush_redis=topology.client(
                socket_timeout=2.0, socket_connect_timeout=settings.redis_timeout_s, retry=Retry(NoBackoff(), 0))),
            micro_cache=MicroCache(settings.micro_cache_entries),
            front_cache=MicroCache(settings.micro_cache_entries),
            zones=DeliveryZoneCache(),
            delivery_cache=MicroCache(settings.micro_cache_entries),
            ranker=Ranker(settings, OfferPieces(index.resolve)),
            drain=Drain(settings.shutdown_drain_s),
        )
        state.drain.install(asyncio.get_running_loop())
        gc_policy.settle_for_serving()
        young_collector = asyncio.create_task(gc_policy.collect_young_forever(), name="nearcart-gc")
        flusher = asyncio.create_task(state.event_buffer.flush_forever(), name="nearcart-events-flush")
        # Statistics: every worker drains the event stream into `stats_daily` (a consumer group shares it).
        aggregator = asyncio.create_task(aggregate_forever(redis, keys, pool)) if settings.aggregate_events else None
        try:
            async with office_lifespan(settings, topology) as office:
                yield {**state.as_lifespan_state(), **office}
        finally:
            if aggregator is not None:
                await stop_task(aggregator)
            await stop_task(young_collector)
            await healer.stop()
            await stop_task(flusher)
            await state.event_buffer.close()
            await state.event_buffer.flush_redis.aclose()
            await index.stop()
            pipe.close()
            geoip.close()
            await pool.close()
            await redis.aclose()
            await topology.aclose()

    return lifespan


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(
        exc.status_code, exc.detail, parameter="path" if exc.status_code == 404 else "", headers=dict(exc.headers or {})
    )


def create_app(settings: Settings) -> ASGIApp:
    """The edge API: `OffersFront` in front of the Starlette app.

    The front answers `GET /v1/offers` itself (see its docstring) and passes everything else,
    lifespan included, to Starlette; outside Starlette, the hottest route skips its layers.
    """
    routes: list[BaseRoute] = [
        *offers.routes,
        *clicks.routes,
        *events.routes,
        *campaigns.routes,
        *health.routes,
        *openapi.routes,
        *pages.routes,
        *admin.routes,
        *admin_feeds.routes,
        # The back office's pages (/admin/..., not /admin/v1/...): backoffice/.
        *backoffice.routes,
    ]
    strict_paths(routes)
    return OffersFront(Starlette(
        routes=routes,
        # BodyLimits inside CORS: a brand's page reads the 413 too.
        middleware=[Middleware(MetricsMiddleware), Middleware(CampaignCORSMiddleware),
                    Middleware(BodyLimits, caps=with_feed_upload_cap(settings.feed_upload_max_bytes))],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=make_lifespan(settings),
    ))


def create_app_from_env() -> ASGIApp:
    """uvicorn's factory in each worker process: settings from `NEARCART_*`."""
    return create_app(load_settings())
