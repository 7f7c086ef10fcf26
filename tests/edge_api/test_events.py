from __future__ import annotations

import time
from collections.abc import Iterator

import msgspec
import pytest
import redis.asyncio as aioredis
from starlette.testclient import TestClient

from cache.keys import Keys
from edge_api.app import create_app
from edge_api.settings import Settings

SHOPPER = ("81.2.69.160", 50000)


def event(kind: str = "open", **extra: object) -> dict[str, object]:
    return {"type": kind, "campaign": "demo", "gtin": "3017620422003", "ts": int(time.time() * 1000), **extra}


@pytest.fixture
def client(settings: Settings, redis: aioredis.Redis) -> Iterator[TestClient]:
    # These tests read the event stream itself: no aggregator may drain it first.
    settings = msgspec.structs.replace(settings, aggregate_events=False)
    with TestClient(create_app(settings), client=SHOPPER) as client:
        yield client


async def test_beacons_are_appended_to_the_stream_with_a_region_only(
    client: TestClient, redis: aioredis.Redis, keys: Keys
) -> None:
    sent = [event("impression"), event("search", shown=[["shop", "in_store", 2]], ts=1735787045000.5)]
    response = client.post("/v1/events", json=sent)
    assert response.status_code == 204
    assert int(response.headers["RateLimit-Remaining"]) < int(response.headers["RateLimit-Limit"])
    entries = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in await redis.xrange(keys.events)]
    assert [(e["kind"], e["shown"], e["region"]) for e in entries] == [("impression", "[]", "GB"),
                                                                     ("search", '[["shop","in_store",2]]', "GB")]
    assert entries[1]["client_ts"] == "1735787045000"
    assert not any("81.2.69" in value for e in entries for value in e.values())


async def test_beacons_older_widgets_send_are_accepted_but_not_counted(
    client: TestClient, redis: aioredis.Redis, keys: Keys
) -> None:
    response = client.post("/v1/events", json=[event("offers_shown"), event("click", retailer="shop", mode="in_store")])
    assert response.status_code == 204
    assert await redis.xlen(keys.events) == 0


def test_search_with_a_malformed_shown_entry_is_named(client: TestClient) -> None:
    response = client.post("/v1/events", json=[event("search", shown=[["shop", "by_drone", 2]])])
    assert response.status_code == 400
    assert response.json()["error"]["parameter"] == "$[0].shown[0][1]"


def test_sendbeacon_text_plain_body_is_accepted(client: TestClient) -> None:
    response = client.post("/v1/events", content=msgspec.json.encode([event()]), headers={"content-type": "text/plain"})
    assert response.status_code == 204


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ([event(), event(), event(), event("bogus")], "$[3].type"),
        ([event(gtin="12")], "$[0].gtin"),
        ([{"type": "open", "campaign": "demo", "gtin": "3017620422003"}], "$[0]"),
        ({"type": "open"}, "$"),
        ([], "$"),
    ],
)
def test_bad_event_is_named_by_its_json_path(client: TestClient, body: object, path: str) -> None:
    response = client.post("/v1/events", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["parameter"] == path


def test_malformed_json_is_a_400(client: TestClient) -> None:
    response = client.post("/v1/events", content=b'[{"type": ')
    assert response.status_code == 400
    assert response.json()["error"]["parameter"] == "$"


def test_more_than_50_events_are_refused(client: TestClient) -> None:
    response = client.post("/v1/events", json=[event() for _ in range(51)])
    assert response.status_code == 400
    assert "50" in response.json()["error"]["message"]


def test_body_over_16_kb_is_413(client: TestClient) -> None:
    body = msgspec.json.encode([event("error", message="x" * 400) for _ in range(35)])
    assert 16 * 1024 < len(body) < 18 * 1024
    response = client.post("/v1/events", content=body)
    assert response.status_code == 413
    assert response.json()["error"]["parameter"] == "body"


def test_streamed_body_over_16_kb_is_413_without_content_length(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(100):
            yield msgspec.json.encode(event(message="y" * 400)) + b","
        yield b"{}]"

    assert client.post("/v1/events", content=chunks()).status_code == 413


def test_rate_limit_is_shared_by_every_worker(settings: Settings, redis: aioredis.Redis) -> None:
    limited = msgspec.structs.replace(settings, events_per_minute=3)
    with TestClient(create_app(limited), client=SHOPPER) as one, TestClient(create_app(limited), client=SHOPPER) as two:
        answers = [client.post("/v1/events", json=[event()]) for client in (one, two, one, two)]
    assert [a.status_code for a in answers] == [204, 204, 204, 429]
    refused = answers[-1]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.headers["RateLimit-Reset"]) <= 60
    assert refused.json()["error"]["code"] == "rate_limited"


def test_rate_limit_counts_each_network_apart(settings: Settings, redis: aioredis.Redis) -> None:
    limited = msgspec.structs.replace(settings, events_per_minute=1)
    app = create_app(limited)
    with TestClient(app, client=SHOPPER) as first, TestClient(app, client=("90.1.2.3", 1)) as second:
        assert first.post("/v1/events", json=[event()]).status_code == 204
        assert first.post("/v1/events", json=[event()]).status_code == 429
        assert second.post("/v1/events", json=[event()]).status_code == 204
