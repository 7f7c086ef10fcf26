"""The shopper's IP address, believing `X-Forwarded-For` only from configured proxies.

Used in memory only: to geolocate, and (truncated by `geo.privacy`) to rate-limit
and count. It is never stored or logged whole.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from starlette.requests import HTTPConnection
from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(conn: HTTPConnection, trusted_proxies: tuple[str, ...]) -> str:
    """The nearest address not belonging to a trusted proxy; "" when unknown."""
    return client_ip_of(conn.scope, trusted_proxies)


def client_ip_of(scope: Scope, trusted_proxies: tuple[str, ...]) -> str:
    """`client_ip` straight from an ASGI scope (for endpoints that build no Request)."""
    client = scope.get("client")
    peer: str = client[0] if client else ""
    networks = _networks(trusted_proxies)
    if not networks or not _trusted(peer, networks):
        return peer
    forwarded: str = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"), "")
    # Walk from the right: each trusted hop vouches for the address before it; the first
    # untrusted one is the client (anything further left could be forged by it).
    for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        if not _trusted(hop, networks):
            return hop
        peer = hop
    return peer
