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
from cache.identifiers import CampaignId, ClickToken, Gtin
from edge_api.openapi_admin import ADMIN_QUERIES, ADMIN_TYPES, SECURITY_SCHEMES, admin_paths
from edge_api.openapi_parts import REF, ecma_patterns, error, html, json_answer, path_parameter, query_parameters
from edge_api.schemas import CampaignPublic, ErrorBody, Events, Health, OffersAnswer, OffersQuery

_TYPES: tuple[Any, ...] = (OffersQuery, OffersAnswer, ErrorBody, Events, CampaignPublic, Health, StatsView)


RATE_HEADERS = {
    name: {"schema": {"type": "integer"}, "description": text}
    for name, text in (
        ("RateLimit-Limit", "events allowed per window"),
        ("RateLimit-Remaining", "events left in this window"),
        ("RateLimit-Reset", "seconds until the window resets"),
    )
}


def build_document(routes: list[BaseRoute], server_url: str = "") -> dict[str, Any]:
    schemas, components = msgspec.json.schema_components(_TYPES + ADMIN_TYPES + ADMIN_QUERIES, ref_template=REF)
    events_schema = schemas[_TYPES.index(Events)]
    # Queries are listed as parameters, not as components.
    queries = {name: components.pop(name) for name in ("OffersQuery", *(q.__name__ for q in ADMIN_QUERIES))}
    query_component = queries["OffersQuery"]
    paths: dict[str, dict[str, Any]] = {
        "/v1/offers": {
            "get": {
                "summary": "Offers of one product near the shopper",
                "description": "An offer its retailer's feed has not confirmed for longer than the data-quality"
                               " threshold (48 h by default) carries `\"unconfirmed\": true`, or is left out,"
                               " as the retailer chose.",
                "operationId": "getOffers",
                "parameters": query_parameters(query_component),
                "responses": {
                    "200": json_answer("OffersAnswer", "offers, nearest store first"),
                    "400": error("a parameter is wrong; `error.parameter` names it"),
                    "503": error("the index cannot be read right now"),
                },
            }
        },
        "/v1/go/{token}": {
            "get": {
                "summary": "Follow a signed offer link to the retailer's basket",
                "operationId": "followClick",
                "parameters": [path_parameter("token", ClickToken)],
                "responses": {
                    "302": {
                        "description": "to the retailer's basket (never cached)",
                        "headers": {"Location": {"schema": {"type": "string", "format": "uri"}, "required": True}},
                    },
                    "400": html("forged, altered or unusable link"),
                    "404": html("the retailer is no longer listed"),
                    "410": html("the link has expired"),
                    "503": html("try again shortly"),
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
                    "400": error("an event is wrong; `error.parameter` is its JSON path, e.g. `$[3].type`"),
                    "413": error("body over 16 KB"),
                    "429": {**error("rate limited; retry after `Retry-After` seconds"), "headers": RATE_HEADERS},
                },
            }
        },
        "/v1/campaigns/{campaign_id}": {
            "get": {
                "summary": "The public part of a campaign",
                "operationId": "getCampaign",
                "parameters": [path_parameter("campaign_id", CampaignId)],
                "responses": {
                    "200": json_answer("CampaignPublic", "products, look, language, modes, retailer order"),
                    "304": {"description": "unchanged since the `If-None-Match` ETag"},
                    "400": error("malformed campaign id"),
                    "404": error("no such campaign"),
                    "503": error("campaigns cannot be read right now"),
                },
            }
        },
        "/healthz": {
            "get": {"operationId": "healthz", "responses": {"200": json_answer("Health", "the process answers")}}
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "responses": {
                    "200": json_answer("Health", "Redis, PostgreSQL and an index are there"),
                    "503": json_answer("Health", "not ready; `checks` says what is missing"),
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
                "parameters": [path_parameter("campaign", CampaignId), path_parameter("gtin", Gtin)],
                "responses": {"200": html("the page"), "4XX": {"description": "unknown campaign or bad GTIN"}},
            }
        },
        "/p/{campaign}/{gtin}/qr.svg": {
            "get": {
                "summary": "QR code of the hosted page",
                "operationId": "productPageQr",
                "parameters": [path_parameter("campaign", CampaignId), path_parameter("gtin", Gtin)],
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
        **admin_paths(queries),
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
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    # The server checks `\A...\Z` patterns with Python; clients read JSON Schema's `^...$`.
    result: dict[str, Any] = ecma_patterns(document)
    return result


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
