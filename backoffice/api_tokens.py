"""API tokens an admin mints for machines: HS256 JWTs as `edge_api.auth` verifies them, recorded by `jti`.

The JWT itself is shown once and never stored; PostgreSQL keeps its id, role,
label, who minted it and when it expires, so it can be listed and revoked.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import jwt

from backoffice.records import fetch_records
from backoffice.roles import parse_role
from edge_api.auth import ALGORITHMS, revoked_tokens

MAX_DAYS = 365
MAX_LABEL = 100


@dataclass(frozen=True, slots=True)
class ApiToken:
    jti: str
    role: str
    label: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"


async def mint(pool: asyncpg.Pool, secret: str, role: str, label: str, days: int, created_by: str) -> str:
    """A new signed token for `role`, valid `days`; recorded before it is handed out."""
    parse_role(role)
    jti = secrets.token_urlsafe(16)
    now = datetime.now(UTC).replace(microsecond=0)
    expires = now + timedelta(days=days)
    await pool.execute(
        "INSERT INTO api_tokens (jti, role, label, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        jti, role, label, created_by, now, expires,
    )
    claims = {"sub": label, "role": role, "jti": jti, "iat": int(now.timestamp()), "exp": int(expires.timestamp())}
    return jwt.encode(claims, secret, algorithm=ALGORITHMS[0])


async def revoke(pool: asyncpg.Pool, jti: str, revoked_by: str) -> str | None:
    """Revoke a token; its label, or None when no such token is live."""
    label: str | None = await pool.fetchval(
        "UPDATE api_tokens SET revoked_at = now(), revoked_by = $2 WHERE jti = $1 AND revoked_at IS NULL"
        " RETURNING label",
        jti, revoked_by,
    )
    revoked_tokens.forget(jti)
    return label


async def list_tokens(pool: asyncpg.Pool, limit: int = 500) -> list[ApiToken]:
    return await fetch_records(
        pool, ApiToken,
        "SELECT jti, role, label, created_by, created_at, expires_at, revoked_at, revoked_by FROM api_tokens"
        " ORDER BY created_at DESC, jti LIMIT $1",
        limit,
    )
