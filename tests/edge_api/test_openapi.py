from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest
import redis.asyncio as aioredis
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.testclient import TestClient

from cache.directory import refresh_directory
from cache.keys import Keys
from edge_api.app import create_app
from edge_api.campaign_store import store_campaign
from edge_api.schemas import Campaign, Product
from edge_api.settings import Settings


def test_openapi_document_is_valid_openapi_3_1(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        document = client.get("/openapi.json").json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    for path in ("/v1/offers", "/v1/go/{token}", "/v1/events", "/v1/campaigns/{campaign_id}", "/healthz", "/readyz"):
        assert path in document["paths"], path
    offers_parameters = {p["name"]: p for p in document["paths"]["/v1/offers"]["get"]["parameters"]}
    assert offers_parameters["gtin"]["required"] is True
    assert offers_parameters["radius_km"]["schema"]["maximum"] == 100
    assert offers_parameters["limit"]["schema"]["maximum"] == 50


@pytest.fixture
async def seeded(db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys) -> None:
    """A retailer, a campaign and a live (empty) index, so generated requests reach real code paths."""
    await db.execute(
        "INSERT INTO retailers (retailer_id, name, cart_url_template) VALUES ('shop', 'Shop', $1)",
        "https://www.shop.example/cart?ean={gtin}&store={store_id}&qty={qty}",
    )
    await refresh_directory(db, redis, keys)
    campaign = Campaign(id="demo", brand="acme", locale="fr", products=[Product(gtin="3017620422003", label="Jar")])
    await store_campaign(db, campaign, 2.0)
    await redis.set(keys.version, 1)


@pytest.fixture
def api_schema(settings: Settings, seeded: None) -> Iterator[schemathesis.schemas.BaseSchema]:
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_no_request_breaks_the_documented_contract(api_schema: schemathesis.schemas.BaseSchema) -> None:
    """Schemathesis over every operation /openapi.json lists: no 5xx, answers as documented."""
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 6
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            check()
        except Exception as exc:  # collect every operation's failure, not only the first
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_statistics_are_described_with_their_filters(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        document = client.get("/openapi.json").json()
    operation = document["paths"]["/admin/v1/stats"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"campaign", "from", "to", "gtin", "retailer", "mode",
                                                             "region", "format"}
    view = document["components"]["schemas"]["StatsView"]
    assert {"totals", "daily", "by_product", "by_retailer", "by_mode", "by_region"} <= set(view["properties"])
