"""Input a user can type that once reached a 500, a 503 or storage (issue #14, findings 1, 2, 3).

Each answer must be a 4xx naming the parameter, or the true answer: never a 5xx, never
"demo\\n" stored, counted or echoed as if it were "demo".
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import jwt
import msgspec
import pytest
import redis.asyncio as aioredis
from starlette.testclient import TestClient

from cache.index import build_index
from cache.keys import Keys
from edge_api.app import create_app
from edge_api.campaign_store import store_campaign
from edge_api.schemas import Campaign
from edge_api.settings import Settings
from tests.conftest import TEST_SECRET

GTIN = "03017620422003"


def _bearer(role: str) -> dict[str, str]:
    claims = {"sub": "ops@example.com", "role": role, "exp": int(time.time()) + 300}
    return {"Authorization": "Bearer " + jwt.encode(claims, TEST_SECRET, algorithm="HS256")}





@pytest.fixture
async def catalog(db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys) -> None:
    """A retailer with a Paris store and home delivery in France, indexed; the campaign `demo`."""
    await db.execute(
        "INSERT INTO retailers (retailer_id, name, cart_url_template, delivery_countries) VALUES"
        " ('shop', 'Shop', 'https://shop.example/{gtin}', '{FR}')"
    )
    await db.execute("INSERT INTO stores (retailer_id, store_id, name, country, lat, lon) VALUES"
                     " ('shop', 's1', 'Shop Opéra', 'FR', 48.87, 2.33)")
    await db.execute(
        "INSERT INTO offers (retailer_id, store_id, gtin, price, currency, quantity, modes, updated_at) VALUES"
        f" ('shop', 's1', '{GTIN}', 2.99, 'EUR', 4, 1, now()), ('shop', '', '{GTIN}', 3.49, 'EUR', 9, 4, now())"
    )
    await build_index(db, redis, keys, grace_s=0)
    demo = {"id": "demo", "brand": "acme", "locale": "fr", "products": [{"gtin": "3017620422003", "label": "Jar"}]}
    await store_campaign(db, msgspec.convert(demo, Campaign), 5.0)


@pytest.fixture
def client(settings: Settings, catalog: None) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


# --- finding 1: a mode with a trailing newline ------------------------------------------------


@pytest.mark.parametrize("modes", ["delivery\n", "in_store\n", "in_store,delivery\n", "delivery\r\n", "\ndelivery"])
def test_mode_with_a_line_break_is_a_400_naming_modes(client: TestClient, modes: str) -> None:
    answer = client.get("/v1/offers", params={"gtin": GTIN, "lat": 48.87, "lon": 2.33, "modes": modes})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["parameter"] == "modes"


# --- finding 2: places beyond what Redis' geo index can search --------------------------------


@pytest.mark.parametrize(("lat", "lon"), [(89.9, 179.9), (-89.9, -179.9), (85.06, 2.35), (-90, 0)])
def test_a_place_beyond_the_geo_index_gets_its_delivery_offers(client: TestClient, lat: float, lon: float) -> None:
    answer = client.get("/v1/offers", params={"gtin": GTIN, "lat": lat, "lon": lon, "country": "FR"})
    assert answer.status_code == 200, answer.text
    offers = answer.json()["offers"]
    assert [(o["mode"], o["store"], o["price"]["amount"]) for o in offers] == [("delivery", None, "3.49")]


def test_the_edge_of_the_geo_index_still_finds_stores_within_the_radius(client: TestClient) -> None:
    # Just inside the limit Redis searches as usual (no store there: the answer is delivery alone too,
    # but it comes from GEOSEARCH, which must not fail).
    answer = client.get("/v1/offers", params={"gtin": GTIN, "lat": 85.05, "lon": 2.35, "country": "FR"})
    assert answer.status_code == 200, answer.text
    assert [o["mode"] for o in answer.json()["offers"]] == ["delivery"]


# --- finding 3: identifiers with a trailing newline -------------------------------------------


def test_campaign_id_with_a_newline_is_not_stored(client: TestClient, db_url_rows: Any) -> None:
    body = {"id": "demo\n", "brand": "acme", "locale": "fr", "products": [{"gtin": "3017620422003", "label": "J"}]}
    answer = client.put("/admin/v1/campaigns/demo%0A", json=body, headers=_bearer("admin"))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["parameter"] == "id"
    assert db_url_rows("SELECT id FROM campaigns ORDER BY id") == [("demo",)]


def test_campaign_body_id_with_a_newline_is_refused_at_its_json_path(client: TestClient) -> None:
    body = {"id": "fresh\n", "brand": "acme", "locale": "fr", "products": [{"gtin": "3017620422003", "label": "J"}]}
    answer = client.put("/admin/v1/campaigns/fresh", json=body, headers=_bearer("admin"))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["parameter"] == "$.id"


@pytest.mark.parametrize("path", ["/p/demo%0A/3017620422003", "/p/demo%0A/3017620422003/qr.svg",
                                  "/p/demo/3017620422003%0A", "/p/demo/3017620422003%0A/qr.svg"])
def test_hosted_page_of_an_id_with_a_newline_is_a_400(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 400, answer.text
    assert "<svg" not in answer.text and "nearcart.js" not in answer.text


def test_path_with_a_newline_after_a_route_is_not_that_route(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz%0A").status_code == 404
    assert client.get("/p/demo/3017620422003/qr.svg%0A").status_code == 404


def test_public_campaign_id_with_a_newline_is_a_400(client: TestClient) -> None:
    assert client.get("/v1/campaigns/demo").status_code == 200
    answer = client.get("/v1/campaigns/demo%0A")
    assert answer.status_code == 400 and answer.json()["error"]["parameter"] == "id"


@pytest.mark.parametrize(("name", "value"), [("country", "FR\n"), ("postal_code", "75001\n"),
                                             ("campaign", "demo\n"), ("gtin", "3017620422003\n")])
def test_offers_parameter_with_a_newline_is_a_400_not_an_echo(client: TestClient, name: str, value: str) -> None:
    params: dict[str, Any] = {"gtin": GTIN, "lat": 48.87, "lon": 2.33, name: value}
    if name == "postal_code":
        params = {"gtin": GTIN, "postal_code": value, "country": "FR"}
    answer = client.get("/v1/offers", params=params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["parameter"] == name


def test_event_for_a_campaign_with_a_newline_is_refused(client: TestClient) -> None:
    event = {"type": "open", "campaign": "demo\n", "gtin": "3017620422003", "ts": 1.0}
    answer = client.post("/v1/events", json=[event])
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["parameter"] == "$[0].campaign"


def test_admin_retailer_id_with_a_newline_is_a_400(client: TestClient) -> None:
    assert client.get("/admin/v1/retailers/shop/stores", headers=_bearer("admin")).status_code == 200
    answer = client.get("/admin/v1/retailers/shop%0A/stores", headers=_bearer("admin"))
    assert answer.status_code == 400 and answer.json()["error"]["parameter"] == "retailer_id"


@pytest.mark.parametrize("role", ["admin\n", "brand:acme\n", "retailer:shop\n"])
def test_role_with_a_newline_is_refused(client: TestClient, role: str) -> None:
    assert client.get("/admin/v1/campaigns", headers=_bearer(role)).status_code == 401


@pytest.fixture
def db_url_rows(settings: Settings) -> Any:
    """A synchronous look at the catalog (the TestClient runs its own event loop)."""
    import asyncio

    def rows(sql: str) -> list[tuple[Any, ...]]:
        async def fetch() -> list[tuple[Any, ...]]:
            conn = await asyncpg.connect(settings.database_url)
            try:
                return [tuple(row) for row in await conn.fetch(sql)]
            finally:
                await conn.close()

        return asyncio.run(fetch())

    return rows
