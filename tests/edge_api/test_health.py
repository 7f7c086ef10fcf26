from __future__ import annotations

import asyncpg
import msgspec
import redis.asyncio as aioredis
from starlette.testclient import TestClient

from cache.embedded import free_port
from cache.index import build_index
from cache.keys import Keys
from edge_api.app import create_app
from edge_api.settings import Settings


def test_healthz_answers_while_the_process_lives(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_readyz_is_ok_with_redis_postgres_and_a_live_index(
    settings: Settings, redis: aioredis.Redis, keys: Keys, db: asyncpg.Connection
) -> None:
    await build_index(db, redis, keys, grace_s=0)
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"redis": "ok", "postgresql": "ok", "index": "ok"}


async def test_readyz_says_no_index_before_the_first_build(settings: Settings, redis: aioredis.Redis) -> None:
    # Without self-healing, which would build one within a second.
    with TestClient(create_app(msgspec.structs.replace(settings, index_check_s=0.0))) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["index"] == "no live index"


async def test_readyz_says_no_index_for_a_version_without_its_completion_marker(
    settings: Settings, redis: aioredis.Redis, keys: Keys
) -> None:
    # A pointer left without the marker a finished build writes: what this Redis holds is not known whole.
    await redis.set(keys.version, 1)
    with TestClient(create_app(msgspec.structs.replace(settings, index_check_s=0.0))) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["index"] == "no live index"


def test_readyz_is_503_when_redis_is_unreachable(settings: Settings) -> None:
    closed = msgspec.structs.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(closed)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"].startswith("unreachable")
    assert body["checks"]["postgresql"] == "ok"


def test_readyz_is_503_when_postgres_is_unreachable(settings: Settings) -> None:
    closed = msgspec.structs.replace(settings, database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    with TestClient(create_app(closed)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["postgresql"].startswith("unreachable")


def test_metrics_count_requests_by_route_template(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        client.get("/v1/go/not-a-token")
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'nearcart_http_requests_total{method="GET",route="/v1/go/{token}",status="400"}' in response.text
    assert "not-a-token" not in response.text


def test_unknown_path_is_a_json_404(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        response = client.get("/v2/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
