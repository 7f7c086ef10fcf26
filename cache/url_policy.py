"""Which URLs nearcart fetches from retailers (pulled feeds, basket-link checks): https, and nothing else.

Plain http is allowed only on loopback and only when `NEARCART_ALLOW_HTTP_LOOPBACK` says so: tests
run their fake retailers there, and no deployment sets it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def fetch_url_error(url: str, allow_http_loopback: bool = False) -> str | None:
    """Why nearcart will not fetch `url`, or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        return f"not a URL: {exc}"
    if not host:
        return "not an absolute URL"
    if parts.username or parts.password:
        return "must not carry a user name or password"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and allow_http_loopback and host in LOOPBACK:
        return None
    return "must be an https URL"
