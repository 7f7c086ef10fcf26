from __future__ import annotations

import asyncpg
import msgspec
import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from cache.identifiers import CampaignId, ClickToken, Gtin, RetailerId, ecma_pattern
from edge_api.app import create_app
from edge_api.settings import Settings
from loadtest.schemathesis_trial import run, seed, table


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


def test_every_path_parameter_carries_the_pattern_the_server_checks_it_with(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        document = client.get("/openapi.json").json()
    server_types = {"campaign_id": CampaignId, "campaign": CampaignId, "gtin": Gtin, "retailer_id": RetailerId,
                    "token": ClickToken}
    seen = set()
    for path, item in document["paths"].items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    expected = msgspec.json.schema(server_types[parameter["name"]])["pattern"]
                    assert parameter["schema"]["pattern"] == ecma_pattern(expected), (path, parameter["name"])
                    seen.add(parameter["name"])
    assert seen == set(server_types)
    # JSON Schema's spelling: ECMA-262 `$` is the end of the string (Python's `\Z`), no `\A`/`\Z` left anywhere.
    assert "\\A" not in msgspec.json.encode(document).decode()


def test_admin_operations_are_documented_behind_the_bearer_jwt(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        document = client.get("/openapi.json").json()
    validate(document)
    assert document["components"]["securitySchemes"]["adminJwt"]["scheme"] == "bearer"
    admin = {(method, path) for path, item in document["paths"].items() if path.startswith("/admin/v1/")
             for method in item}
    assert admin == {("get", "/admin/v1/campaigns"), ("get", "/admin/v1/campaigns/{campaign_id}"),
                     ("put", "/admin/v1/campaigns/{campaign_id}"), ("get", "/admin/v1/stats"),
                     ("get", "/admin/v1/retailers/{retailer_id}/stores"),
                     ("get", "/admin/v1/retailers/{retailer_id}/offers")}
    for method, path in admin:
        operation = document["paths"][path][method]
        assert operation["security"] == [{"adminJwt": []}] and "401" in operation["responses"]


@pytest.fixture
async def seeded(db: asyncpg.Connection, settings: Settings) -> None:
    """A retailer, a store, offers, a campaign and a live index, so generated requests reach real code paths."""
    await seed(settings)


def test_every_operation_keeps_the_documented_contract_admin_ones_included(settings: Settings, seeded: None) -> None:
    """Schemathesis, 100 examples per operation /openapi.json lists: no 5xx, answers as documented."""
    found = run(settings, examples=100)
    print(table(found))
    operations = {tried.operation for tried in found}
    assert {"GET /v1/offers", "PUT /admin/v1/campaigns/{campaign_id}", "GET /admin/v1/stats"} <= operations
    assert len(found) >= 15
    # Admin operations got past authentication: the token was good, so their own code answered.
    for tried in found:
        if tried.operation.startswith(("GET /admin/", "PUT /admin/")):
            assert set(tried.statuses) - {401}, tried
    failures = {tried.operation: tried.first for tried in found if tried.failures}
    assert failures == {}
    few = {tried.operation: tried.examples for tried in found if tried.examples < 100}
    # Only operations with nothing to vary (no parameters, no body) run out of distinct examples.
    assert set(few) <= {"GET /healthz", "GET /readyz", "GET /metrics", "GET /admin/v1/campaigns"}, few


def test_statistics_are_described_with_their_filters(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        document = client.get("/openapi.json").json()
    operation = document["paths"]["/admin/v1/stats"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"campaign", "from", "to", "gtin", "retailer", "mode",
                                                             "region", "format"}
    view = document["components"]["schemas"]["StatsView"]
    assert {"totals", "daily", "by_product", "by_retailer", "by_mode", "by_region"} <= set(view["properties"])

