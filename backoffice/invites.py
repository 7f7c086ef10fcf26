"""One-time invitations for a retailer to join: minted by an admin, spent once by the retailer, then dead.

The link carries `secrets.token_urlsafe(32)`; PostgreSQL keeps only its SHA-256, so a
copy of the database opens no invitation. Spending one and creating the retailer's
account happen in one transaction: two tabs posting the same link make one account.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from backoffice.keys import digest
from backoffice.passwords import hash_async
from backoffice.records import fetch_records
from backoffice.users import UserError, normalize_email

# Retailer ids as a `retailer:<id>` role may carry them (no ':'): backoffice/roles.py.
RETAILER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Tokens are 43 characters; anything much longer is not one of ours.
MAX_TOKEN = 64


class InviteError(ValueError):
    """An invitation refused; the message says why (it names the form field first)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Invite:
    retailer_id: str
    email: str
    invited_by: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


def check_retailer_id(retailer_id: str) -> str:
    value = retailer_id.strip()
    if not RETAILER_ID.fullmatch(value):
        raise InviteError("retailer_id", "retailer id: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter"
                          " or digit")
    return value


async def create_invite(
    pool: asyncpg.Pool, retailer_id: str, email: str, invited_by: str, ttl_s: int
) -> tuple[str, Invite]:
    """(the token for the link, the stored invitation); `InviteError` for a bad id or an email already in use."""
    retailer_id = check_retailer_id(retailer_id)
    try:
        email = normalize_email(email)
    except UserError as exc:
        raise InviteError("email", str(exc)) from None
    if await pool.fetchval("SELECT 1 FROM users WHERE email = $1", email):
        raise InviteError("email", f"{email} already has an account")
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC).replace(microsecond=0)
    invite = Invite(retailer_id, email, invited_by, now, now + timedelta(seconds=ttl_s), None)
    await pool.execute(
        "INSERT INTO retailer_invites (token_hash, retailer_id, email, invited_by, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        digest(token), retailer_id, email, invited_by, invite.created_at, invite.expires_at,
    )
    return token, invite


async def live_invite(pool: asyncpg.Pool | asyncpg.Connection, token: str) -> Invite | None:
    """The invitation of this token while it can still be spent; None when unknown, used or expired."""
    if not token or len(token) > MAX_TOKEN:
        return None
    row = await pool.fetchrow(
        "SELECT retailer_id, email, invited_by, created_at, expires_at, used_at FROM retailer_invites"
        " WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()",
        digest(token),
    )
    return Invite(**dict(row)) if row is not None else None


async def accept_invite(pool: asyncpg.Pool, token: str, password: str) -> Invite | None:
    """Spend the invitation and create its `retailer:<id>` account; None when it cannot be spent (any reason).

    The password is hashed before the transaction (argon2id takes a while) and checked by the caller.
    """
    stored = await hash_async(password)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "UPDATE retailer_invites SET used_at = now()"
            " WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()"
            " RETURNING retailer_id, email, invited_by, created_at, expires_at, used_at",
            digest(token),
        )
        if row is None:
            return None
        invite = Invite(**dict(row))
        status = await conn.execute(
            "INSERT INTO users (email, role, password_hash) VALUES ($1, $2, $3) ON CONFLICT (email) DO NOTHING",
            invite.email, f"retailer:{invite.retailer_id}", stored,
        )
        if not status.endswith(" 1"):
            # Someone made that account since the invitation: raise to roll the spending back too.
            raise InviteError("email", f"{invite.email} already has an account")
    return invite


async def pending_invites(pool: asyncpg.Pool, limit: int = 200) -> list[Invite]:
    return await fetch_records(
        pool, Invite,
        "SELECT retailer_id, email, invited_by, created_at, expires_at, used_at FROM retailer_invites"
        " ORDER BY created_at DESC LIMIT $1",
        limit,
    )
