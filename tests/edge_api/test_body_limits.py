"""Bodies over their route's cap get 413, declared or streamed, and the handler never holds more than the cap."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from backoffice.campaign_pages import EDIT_FORM_LIMIT
from edge_api.app import create_app
from edge_api.body_limits import DEFAULT_BODY_CAP, BodyLimits, body_cap
from edge_api.campaign_rules import MAX_CAMPAIGN_BYTES
from edge_api.schemas import MAX_EVENTS_BYTES
from edge_api.settings import Settings


@pytest.fixture
def client(settings: Settings, db: asyncpg.Connection) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def chunks(total: int, size: int = 8192) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


def assert_too_large(response: Any, cap: int) -> None:
    assert response.status_code == 413
    assert response.json()["error"]["parameter"] == "body"
    assert str(cap) in response.json()["error"]["message"]


def test_each_route_has_its_cap_and_the_others_the_default() -> None:
    assert body_cap("POST", "/v1/events") == MAX_EVENTS_BYTES
    assert body_cap("PUT", "/admin/v1/campaigns/spring") == MAX_CAMPAIGN_BYTES
    assert body_cap("POST", "/admin/campaigns/spring") == EDIT_FORM_LIMIT
    assert body_cap("PUT", "/admin/v1/campaigns/a/b") == body_cap("GET", "/healthz") == DEFAULT_BODY_CAP


def test_a_body_declared_over_the_cap_is_refused_before_the_route_runs(client: TestClient) -> None:
    # No JWT: the 413 comes before anything else, without reading a byte of the body.
    response = client.put("/admin/v1/campaigns/spring", content=b"{" * (MAX_CAMPAIGN_BYTES + 1))
    assert_too_large(response, MAX_CAMPAIGN_BYTES)
    assert response.headers["connection"] == "close"


def test_a_body_sent_to_a_route_that_takes_none_is_refused_over_the_default_cap(client: TestClient) -> None:
    assert client.request("GET", "/healthz", content=b"x" * 100).status_code == 200
    assert_too_large(client.request("GET", "/healthz", content=b"x" * (DEFAULT_BODY_CAP + 1)), DEFAULT_BODY_CAP)


def test_a_streamed_body_is_cut_at_the_cap_and_the_handler_never_holds_more() -> None:
    seen: list[int] = []

    async def echo(request: Request) -> Response:
        seen.append(len(await request.body()))
        return JSONResponse({"size": seen[-1]})

    app = BodyLimits(Starlette(routes=[Route("/up", echo, methods=["POST"])]), [("POST", re.compile("/up"), 32768)])
    with TestClient(app) as client:
        assert client.post("/up", content=chunks(32768)).json() == {"size": 32768}
        assert_too_large(client.post("/up", content=chunks(10 * 32768)), 32768)
    assert seen == [32768]
