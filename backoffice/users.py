"""The people who log in to the back office, kept in PostgreSQL (`users`), and `nearcart users ...`.

Emails are stored lower-cased, so `Ada@Example.com` and `ada@example.com` are one person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from backoffice.passwords import dummy_hash, hash_async, needs_rehash, verify_async
from backoffice.roles import parse_role

MAX_EMAIL_LENGTH = 254
# No control characters either (PostgreSQL text cannot even hold NUL).
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")


class UserError(ValueError):
    """An email or role the command refuses; the message says why."""


@dataclass(frozen=True, slots=True)
class User:
    email: str
    role: str
    password_hash: str
    password_changed_at: datetime


def normalize_email(email: str) -> str:
    """The stored form of an email; `UserError` when it does not look like one."""
    value = email.strip().lower()
    if len(value) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(value):
        raise UserError(f"{email!r} is not an email address")
    return value


async def find_user(conn: asyncpg.Connection | asyncpg.Pool, email: str) -> User | None:
    row = await conn.fetchrow(
        "SELECT email, role, password_hash, password_changed_at FROM users WHERE email = $1", email
    )
    return User(**dict(row)) if row is not None else None


async def add_user(conn: asyncpg.Connection, email: str, role: str, password: str) -> bool:
    """Create a person; False when the email is already taken (nothing changes then)."""
    parse_role(role)
    stored = await hash_async(password)
    status = await conn.execute(
        "INSERT INTO users (email, role, password_hash) VALUES ($1, $2, $3) ON CONFLICT (email) DO NOTHING",
        normalize_email(email), role, stored,
    )
    return bool(status.endswith(" 1"))


async def set_password(conn: asyncpg.Connection | asyncpg.Pool, email: str, password: str) -> bool:
    """Replace a password (which ends the person's open sessions); False when there is no such person."""
    stored = await hash_async(password)
    status = await conn.execute(
        "UPDATE users SET password_hash = $2, password_changed_at = now() WHERE email = $1",
        normalize_email(email), stored,
    )
    return bool(status.endswith(" 1"))


async def remove_user(conn: asyncpg.Connection, email: str) -> bool:
    status = await conn.execute("DELETE FROM users WHERE email = $1", normalize_email(email))
    return bool(status.endswith(" 1"))


async def upgrade_hash(pool: asyncpg.Pool, user: User, password: str) -> None:
    """After a successful login: rehash with today's parameters if they changed since the hash was made.

    The password itself does not change, so neither does `password_changed_at` (sessions stay open).
    """
    if not needs_rehash(user.password_hash):
        return
    stored = await hash_async(password)
    await pool.execute(
        "UPDATE users SET password_hash = $2 WHERE email = $1 AND password_hash = $3",
        user.email, stored, user.password_hash,
    )


async def check_login(pool: asyncpg.Pool, email: str, password: str) -> User | None:
    """The person whose email and password these are, else None (an unknown email costs a verification too)."""
    try:
        user = await find_user(pool, normalize_email(email))
    except UserError:
        user = None
    if not await verify_async(user.password_hash if user else dummy_hash(), password) or user is None:
        return None
    await upgrade_hash(pool, user, password)
    return user
