"""The one JSON error shape: `{"error": {"code", "parameter", "message"}}`, and the small HTML error page.

Clients (the widget, brands' scripts, schemathesis) get the name of the bad
parameter and why, never a stack trace.
"""

from __future__ import annotations

import html
import re

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from edge_api.schemas import ErrorBody, ErrorDetail

_encoder = msgspec.json.Encoder()
# msgspec ends its messages with " - at `$.field[3].x`"; the path names the parameter.
_AT_PATH = re.compile(r"^(?P<message>.*?) - at `(?P<path>\$[^`]*)`$", re.DOTALL)
_AT_KEY = re.compile(r"^(?P<message>.*?) - at `key` in `(?P<path>\$[^`]*)`$", re.DOTALL)
_DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    410: "gone",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


def error_response(
    status: int, message: str, parameter: str = "", code: str = "", headers: dict[str, str] | None = None
) -> Response:
    detail = ErrorDetail(code=code or _DEFAULT_CODES.get(status, "error"), parameter=parameter, message=message)
    body = ErrorBody(error=detail)
    return Response(_encoder.encode(body), status_code=status, media_type="application/json", headers=headers)


def bad_parameter(parameter: str, message: str, status: int = 400) -> Response:
    """A 400 naming the query/path/body parameter a client got wrong."""
    return error_response(status, message, parameter=parameter, code="invalid_parameter")


def split_validation_error(exc: msgspec.ValidationError | msgspec.DecodeError) -> tuple[str, str]:
    """(JSON path, reason) of a msgspec error; the path is `$` when msgspec names none."""
    match = _AT_KEY.match(str(exc))
    if match is not None:
        return match.group("path"), "an object key: " + match.group("message")
    match = _AT_PATH.match(str(exc))
    if match is None:
        return "$", str(exc)
    return match.group("path"), match.group("message")


def validation_error(exc: msgspec.ValidationError | msgspec.DecodeError, root: str = "") -> Response:
    """A 400 from a msgspec error.

    With `root` empty the JSON path is kept (`$[3].type`, for bodies); with a root
    such as "query" the leading `$.` is dropped so a query string error names the
    parameter itself (`radius_km`).
    """
    path, message = split_validation_error(exc)
    if root:
        name = path[2:] if path.startswith("$.") else ""
        missing = re.match(r"^Object missing required field `(?P<field>[^`]+)`$", message)
        if missing:
            name = missing.group("field")
        path = name or root
    return bad_parameter(path, message)


def error_page(status: int, title: str, detail: str) -> HTMLResponse:
    """A tiny HTML page for a shopper who followed a broken link; never cached."""
    body = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title>"
        "<body style='font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem'>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(detail)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


async def not_found(request: Request, exc: Exception) -> Response:
    return error_response(404, f"no resource at {request.url.path}", parameter="path")


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    return error_response(405, f"{request.method} is not allowed here", parameter="method")


def internal_error() -> Response:
    """What a client sees of a bug: a JSON 500, from Starlette's handler and from the offers front alike."""
    return error_response(500, "internal error")


async def server_error(request: Request, exc: Exception) -> Response:
    return internal_error()
