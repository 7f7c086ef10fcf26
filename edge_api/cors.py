"""CORS per campaign, the one implementation: `CampaignCORSMiddleware` and `OffersFront` both use it.

An origin is allowed when the campaign a request asks for lists it in `allowed_origins`.
Beacons (`/v1/events`) name their campaigns inside the body, which a preflight does not
carry, so there an origin of any campaign is allowed. No cookies are used, so credentials
are never allowed.
"""

from __future__ import annotations

import msgspec
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cache.db import DATABASE_UNAVAILABLE
from edge_api.campaign_store import CampaignStore
from edge_api.errors import error_response
from edge_api.state import state_of

CORS_PATHS = ("/v1/",)
CORS_METHODS = "GET, POST, OPTIONS"
CORS_MAX_AGE = "600"
_EXPOSED = b"ETag, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"
# Named once: compiled (setup.py), an `except` clause takes no starred tuple.
_UNKNOWABLE = (*DATABASE_UNAVAILABLE, msgspec.DecodeError)


def _campaign_of(scope: Scope) -> str | None:
    """The campaign a browser request is made for: in the path or the `campaign` query parameter."""
    path: str = scope["path"]
    if path.startswith("/v1/campaigns/"):
        return path.removeprefix("/v1/campaigns/").split("/", 1)[0] or None
    for part in scope.get("query_string", b"").decode("latin-1").split("&"):
        if part.startswith("campaign="):
            return part.removeprefix("campaign=") or None
    return None


async def origin_allowed(campaigns: CampaignStore | None, scope: Scope, origin: str) -> bool:
    """Whether a browser at `origin` may read this answer (the campaign asked for lists it)."""
    try:
        return campaigns is not None and await campaigns.origin_allowed(origin, _campaign_of(scope))
    except _UNKNOWABLE:
        return False


def cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
    """What an allowed origin's answer carries."""
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-expose-headers", _EXPOSED),
        (b"vary", b"Origin"),
    ]


async def cors_headers_for(campaigns: CampaignStore | None, scope: Scope, origin: str) -> list[tuple[bytes, bytes]]:
    """The CORS headers an answer to `origin` carries: none when the origin is not allowed."""
    return cors_headers(origin) if await origin_allowed(campaigns, scope, origin) else []


class CampaignCORSMiddleware:
    """Adds CORS headers to allowed origins' answers and answers their preflights."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(CORS_PATHS):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if not origin:
            await self.app(scope, receive, send)
            return
        state = state_of(scope)
        campaigns = state.campaigns if state is not None else None
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            allowed = await origin_allowed(campaigns, scope, origin)
            await _preflight(allowed, origin, headers)(scope, receive, send)
            return
        added = await cors_headers_for(campaigns, scope, origin)
        if not added:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        await self.app(scope, receive, send_with_cors)


def _preflight(allowed: bool, origin: str, headers: Headers) -> Response:
    if not allowed:
        return error_response(403, f"origin {origin} is not allowed", parameter="Origin", code="origin")
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": CORS_METHODS,
            "Access-Control-Allow-Headers": headers.get("access-control-request-headers", "content-type"),
            "Access-Control-Max-Age": CORS_MAX_AGE,
            "Vary": "Origin",
        },
    )
