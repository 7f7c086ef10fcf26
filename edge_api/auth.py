"""Who is calling `/admin/v1/...`: an HS256 JWT in `Authorization: Bearer`, turned into a `Principal`.

Tokens are minted elsewhere (by whoever holds `NEARCART_JWT_SECRET`); the API
only checks them. Only HS256 is accepted, so a token signed with `none` or with
the secret used as an RSA "public key" is refused. `sub`, `role` and `exp` are
required: a token that never expires is a credential that cannot be revoked.
Claims are exact: `role` matches its pattern in full (no trailing newline), `exp` is an
integer (pyjwt alone takes the numeric string "1796000000"), `sub` a string; a token
over `MAX_TOKEN_BYTES` is refused before anything is decoded.
Tokens minted from the back office also carry a `jti`, and revoking one there
(`api_tokens.revoked_at`) refuses it here within `RevokedTokens.ttl_s`.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Literal

import asyncpg
import jwt
import msgspec

from edge_api import b64url

ALGORITHMS = ["HS256"]
REQUIRED_CLAIMS = ["sub", "role", "exp"]
# Seconds of clock difference tolerated between the minting machine and this one.
LEEWAY_S = 30
# Ours are about 200 bytes; 4 KB leaves room for other claims and stops a megabyte being decoded.
MAX_TOKEN_BYTES = 4096
Role = Literal["admin", "brand", "retailer"]
# Used with fullmatch: `$` would also match before a trailing newline ("admin\n").
_ROLE = re.compile(r"admin|(?P<kind>brand|retailer):(?P<id>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})")


class _Claims(msgspec.Struct):
    """The claims we act on, with exact types (other claims are ignored)."""

    sub: str
    role: str
    exp: int
    iat: int | None = None
    nbf: int | None = None
    # Set by the back office on the tokens it mints (what a revocation names).
    jti: str = ""


class AuthError(Exception):
    """Why a request carries no usable token; the message is safe to show the caller."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller's role and the id it is scoped to (`acme` for `brand:acme`, empty for `admin`)."""

    role: Role
    subject: str
    # The token's `sub` (a person or a machine), kept for logs, never used for scoping.
    user: str = ""
    # The token's `jti`, when it has one (tokens minted by the back office): what a revocation names.
    token_id: str = ""

    def is_brand(self, brand: str) -> bool:
        return self.role == "brand" and self.subject == brand

    def is_retailer(self, retailer_id: str) -> bool:
        return self.role == "retailer" and self.subject == retailer_id


def decode_token(token: str, secret: str) -> Principal:
    """The principal of a signed, unexpired token; `AuthError` otherwise."""
    if not secret:
        raise AuthError("admin API is disabled: no JWT secret configured")
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthError(f"token is longer than {MAX_TOKEN_BYTES} bytes")
    _check_spelling(token)
    try:
        claims = jwt.decode(token, secret, algorithms=ALGORITHMS, options={"require": REQUIRED_CLAIMS}, leeway=LEEWAY_S)
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("token has expired") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise AuthError(f"token lacks the {exc.claim!r} claim") from exc
    except jwt.InvalidTokenError as exc:
        raise AuthError("token is invalid (bad signature, algorithm or format)") from exc
    try:
        exact = msgspec.convert(claims, _Claims)
    except msgspec.ValidationError as exc:
        raise AuthError(f"token claims are not as expected: {exc}") from exc
    match = _ROLE.fullmatch(exact.role)
    if match is None:
        raise AuthError("token role must be 'admin', 'brand:<id>' or 'retailer:<id>'")
    if match.group("kind") == "brand":
        return Principal("brand", match.group("id"), exact.sub, exact.jti)
    if match.group("kind") == "retailer":
        return Principal("retailer", match.group("id"), exact.sub, exact.jti)
    return Principal("admin", "", exact.sub, exact.jti)


def _check_spelling(token: str) -> None:
    """Three canonical base64url parts: pyjwt's lenient decoder would also take other spellings of a token."""
    parts = token.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not three parts")
        for part in parts:
            b64url.decode(part)
    except ValueError as exc:
        raise AuthError("token is invalid (bad signature, algorithm or format)") from exc


def principal_from_header(authorization: str | None, secret: str) -> Principal:
    """The principal named by an `Authorization` header value; `AuthError` when absent or unusable."""
    if not authorization:
        raise AuthError("missing Authorization: Bearer <token>")
    if len(authorization) > MAX_TOKEN_BYTES + len("Bearer "):
        raise AuthError(f"token is longer than {MAX_TOKEN_BYTES} bytes")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization must be 'Bearer <token>'")
    return decode_token(token.strip(), secret)


class RevokedTokens:
    """Whether a token id was revoked, asked of PostgreSQL at most once per `ttl_s` per id in each worker.

    A revocation therefore takes up to `ttl_s` to reach every worker; the worker that
    revokes forgets its own answer at once (`forget`).
    """

    def __init__(self, ttl_s: float = 5.0, limit: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.limit = limit
        self._known: dict[str, tuple[float, bool]] = {}

    async def is_revoked(self, pool: asyncpg.Pool, token_id: str, timeout_s: float) -> bool:
        now = time.monotonic()
        hit = self._known.get(token_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with asyncio.timeout(timeout_s):
            revoked = bool(
                await pool.fetchval("SELECT revoked_at IS NOT NULL FROM api_tokens WHERE jti = $1", token_id)
            )
        if len(self._known) >= self.limit:
            self._known.clear()
        self._known[token_id] = (now + self.ttl_s, revoked)
        return revoked

    def forget(self, token_id: str) -> None:
        self._known.pop(token_id, None)


# One per worker process.
revoked_tokens = RevokedTokens()
