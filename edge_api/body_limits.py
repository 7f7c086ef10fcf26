"""Request bodies have a size per route: 413 before reading when Content-Length says more, and once a stream passes it.

A route that takes a body names its cap here (method and path pattern); every other
route gets `DEFAULT_BODY_CAP`, since nothing it does needs more. The declared length
is checked before the app runs (a 10 GB upload is refused before its first byte is
read); a body streamed without one is counted as it arrives, and the app sees the
client disconnect once it passes the cap. The 413 closes the connection, so the rest
of an oversized body is not read either. Handlers may still cap lower themselves.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backoffice.campaign_pages import EDIT_FORM_LIMIT
from edge_api.campaign_rules import MAX_CAMPAIGN_BYTES
from edge_api.errors import error_response
from edge_api.schemas import MAX_EVENTS_BYTES

# Login forms and stray bodies: more than enough, and a GET with a megabyte attached is not a request we serve.
DEFAULT_BODY_CAP = 64 * 1024
# A retailer's feed upload (gzip accepted): the route that takes it may set a closer figure.
MAX_FEED_UPLOAD_BYTES = 512 * 1024 * 1024
# The back office's upload form carries its other fields and multipart boundaries around the file.
FEED_FORM_SLACK = 64 * 1024

BodyCap = tuple[str, "re.Pattern[str]", int]
BODY_CAPS: list[BodyCap] = [
    ("POST", re.compile(r"/v1/events"), MAX_EVENTS_BYTES),
    ("PUT", re.compile(r"/admin/v1/campaigns/[^/]+"), MAX_CAMPAIGN_BYTES),
    # The back office's campaign editor posts the campaign as form text.
    ("POST", re.compile(r"/admin/campaigns/[^/]+"), EDIT_FORM_LIMIT),
    ("PUT", re.compile(r"/admin/v1/retailers/[^/]+/feeds/[^/]+"), MAX_FEED_UPLOAD_BYTES),
    ("POST", re.compile(r"/admin/retailers/[^/]+/feeds"), MAX_FEED_UPLOAD_BYTES + FEED_FORM_SLACK),
]

_DISCONNECT: Message = {"type": "http.disconnect"}


def with_feed_upload_cap(max_bytes: int, caps: list[BodyCap] = BODY_CAPS) -> list[BodyCap]:
    """The caps with the feed uploads' set to `NEARCART_FEED_UPLOAD_MAX_BYTES` instead of the default."""
    return [
        (method, pattern, max_bytes + (cap - MAX_FEED_UPLOAD_BYTES) if cap >= MAX_FEED_UPLOAD_BYTES else cap)
        for method, pattern, cap in caps
    ]


def body_cap(method: str, path: str, caps: list[BodyCap] = BODY_CAPS) -> int:
    """The most bytes a request body to `method path` may have."""
    for cap_method, pattern, cap in caps:
        if method == cap_method and pattern.fullmatch(path):
            return cap
    return DEFAULT_BODY_CAP


class BodyLimits:
    """ASGI middleware answering 413 to a body over its route's cap."""

    def __init__(self, app: ASGIApp, caps: list[BodyCap] | None = None) -> None:
        self.app = app
        self.caps = BODY_CAPS if caps is None else caps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = body_cap(scope["method"], scope["path"], self.caps)
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), b"0")
        if not declared.isdigit() or int(declared) > cap:
            await self._too_large(cap, scope, receive, send)
            return
        received = 0
        over = started = False

        async def counted_receive() -> Message:
            nonlocal received, over
            if over:
                return _DISCONNECT
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    # The app stops reading as if the client had gone; the 413 below answers instead.
                    over = True
                    return _DISCONNECT
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if over and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except Exception:
            # The app's reaction to the disconnect (Starlette's ClientDisconnect) is not an error of ours.
            if not over:
                raise
        if over and not started:
            await self._too_large(cap, scope, receive, send)

    @staticmethod
    async def _too_large(cap: int, scope: Scope, receive: Receive, send: Send) -> None:
        # Connection: close, so the server does not read the rest of the body to reach the next request.
        message = f"body larger than {cap} bytes"
        await error_response(413, message, parameter="body", headers={"Connection": "close"})(scope, receive, send)
