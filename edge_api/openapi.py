"""`/openapi.json`: an OpenAPI 3.1 document built from the very msgspec types that validate requests.

Only paths the running app actually routes are listed, so the document never
promises an endpoint this build lacks (pages and offers come from other modules).
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from backoffice.stats import StatsView
from backoffice.stats_scope import StatsQuery
from edge_api.schemas import CampaignPublic, ErrorBody, Events, Health, OffersAnswer, OffersQuery

REF = "#/components/schemas/{name}"
_TYPES: tuple[Any, ...] = (OffersQuery, OffersAnswer, ErrorBody, Events, CampaignPublic, Health, StatsView)


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(name="ErrorBody")}}},
    }


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": REF.format(name=name)}}}}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a value, never JSON null."""
    schema = {k: v for k, v in schema.items() if not (k == "default" and v is None)}
    options = [s for s in schema.get("anyOf", []) if s != {"type": "null"}]
    if "anyOf" in schema and len(options) == 1:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**options[0], **rest}
    return schema


def _query_parameters(component: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(component.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": _without_null(schema)}
        for name, schema in component["properties"].items()
    ]


RATE_HEADERS = {
    name: {"schema": {"type": "integer"}, "description": text}
    for name, text in (
        ("RateLimit-Limit", "events allowed per window"),
        ("RateLimit-Remaining", "events left in this window"),
        ("RateLimit-Reset", "seconds until the window resets"),
    )
}


def build_document(routes: list[BaseRoute], server_url: str = "") -> dict[str, Any]:
    (_, _, _, events_schema, _, _, _), components = msgspec.json.schema_components(_TYPES, ref_template=REF)
    components.pop("OffersQuery")
    query_component = msgspec.json.schema_components((OffersQuery,), ref_template=REF)[1]["OffersQuery"]
    stats_query = msgspec.json.schema_components((StatsQuery,), ref_template=REF)[1]["StatsQuery"]
    paths: dict[str, dict[str, Any]] = {
        "/v1/offers": {
            "get": {
                "summary": "Offers of one product near the shopper",
                "operationId": "getOffers",
                "parameters": _query_parameters(query_component),
                "responses": {
                    "200": _json("OffersAnswer", "offers, nearest store first"),
                    "400": _error("a parameter is wrong; `error.parameter` names it"),
                    "503": _error("the index cannot be read right now"),
                },
            }
        },
        "/v1/go/{token}": {
            "get": {
                "summary": "Follow a signed offer link to the retailer's basket",
                "operationId": "followClick",
                "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "302": {
                        "description": "to the retailer's basket (never cached)",
                        "headers": {"Location": {"schema": {"type": "string", "format": "uri"}, "required": True}},
                    },
                    "400": _html("forged, altered or unusable link"),
                    "404": _html("the retailer is no longer listed"),
                    "410": _html("the link has expired"),
                    "503": _html("try again shortly"),
                },
            }
        },
        "/v1/events": {
            "post": {
                "summary": "Widget beacons",
                "operationId": "postEvents",
                "requestBody": {"required": True, "content": {"application/json": {"schema": events_schema}}},
                "responses": {
                    "204": {"description": "accepted (kept by the server while its Redis is away)",
                            "headers": RATE_HEADERS},
                    "400": _error("an event is wrong; `error.parameter` is its JSON path, e.g. `$[3].type`"),
                    "413": _error("body over 16 KB"),
                    "429": {**_error("rate limited; retry after `Retry-After` seconds"), "headers": RATE_HEADERS},
                },
            }
        },
        "/v1/campaigns/{campaign_id}": {
            "get": {
                "summary": "The public part of a campaign",
                "operationId": "getCampaign",
                "parameters": [{"name": "campaign_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": _json("CampaignPublic", "products, look, language, modes, retailer order"),
                    "304": {"description": "unchanged since the `If-None-Match` ETag"},
                    "400": _error("malformed campaign id"),
                    "404": _error("no such campaign"),
                    "503": _error("campaigns cannot be read right now"),
                },
            }
        },
        "/admin/v1/stats": {
            "get": {
                "summary": "Statistics: totals, a daily series, tables by product, retailer, mode and region",
                "description": "Scoped to the token's role: an admin sees every campaign, a brand its own, a"
                " retailer the rows of its retailer id. `format=csv` gives the same figures as CSV.",
                "operationId": "getStats",
                "security": [{"bearer": []}],
                "parameters": _query_parameters(stats_query),
                "responses": {
                    "200": {
                        "description": "the figures of the period and filters",
                        "content": {
                            "application/json": {"schema": {"$ref": REF.format(name="StatsView")}},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "400": _error("a parameter is wrong; `error.parameter` names it"),
                    "401": _error("no token, or an unusable one"),
                    "404": _error("a campaign or retailer outside the token's scope (as one that does not exist)"),
                    "503": _error("the statistics cannot be read right now"),
                },
            }
        },
        "/healthz": {"get": {"operationId": "healthz", "responses": {"200": _json("Health", "the process answers")}}},
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "responses": {
                    "200": _json("Health", "Redis, PostgreSQL and an index are there"),
                    "503": _json("Health", "not ready; `checks` says what is missing"),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/p/{campaign}/{gtin}": {
            "get": {
                "summary": "Hosted page with the widget open (QR codes, social links)",
                "operationId": "productPage",
                "parameters": [
                    {"name": "campaign", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "gtin", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {"200": _html("the page"), "4XX": {"description": "unknown campaign or bad GTIN"}},
            }
        },
        "/p/{campaign}/{gtin}/qr.svg": {
            "get": {
                "summary": "QR code of the hosted page",
                "operationId": "productPageQr",
                "parameters": [
                    {"name": "campaign", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "gtin", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {"description": "SVG", "content": {"image/svg+xml": {"schema": {"type": "string"}}}},
                    "4XX": {"description": "unknown campaign or bad GTIN"},
                },
            }
        },
        "/cdn/v1/nearcart.js": {
            "get": {
                "summary": "The widget (CDN origin)",
                "operationId": "widgetEntry",
                "responses": {
                    "200": {"description": "JavaScript", "content": {"text/javascript": {"schema": {"type": "string"}}}}
                },
            }
        },
    }
    routed = {route.path for route in _flatten(routes)}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "nearcart edge API",
            "version": "1",
            "description": "Where to buy a product near the shopper. No cookies, no identifiers.",
        },
        "paths": {path: item for path, item in paths.items() if path in routed},
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document


def _flatten(routes: list[BaseRoute]) -> list[Route]:
    found: list[Route] = []
    for route in routes:
        if isinstance(route, Route):
            found.append(route)
        sub = getattr(route, "routes", None)
        if sub:
            prefix = getattr(route, "path", "")
            found.extend(Route(prefix + r.path, r.endpoint) for r in _flatten(sub))
    return found


async def openapi_json(request: Request) -> Response:
    cached: bytes | None = getattr(request.app.state, "openapi", None)
    if cached is None:
        cached = msgspec.json.encode(build_document(request.app.routes))
        request.app.state.openapi = cached
    return Response(cached, media_type="application/json")


routes = [Route("/openapi.json", openapi_json, methods=["GET"], name="openapi", include_in_schema=False)]
