"""`nearcart users add|passwd|remove`: what the commands do, apart from click's parsing (edge_api/cli.py).

Exit status: 0 done; 1 refused (email taken, no such person, weak password); 2 the
database cannot be used (unreachable, or not migrated).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable

import asyncpg
import click

from backoffice.passwords import PasswordError, check_new_password
from backoffice.roles import RoleError, parse_role
from backoffice.users import UserError, add_user, normalize_email, remove_user, set_password
from cache.db import DATABASE_UNAVAILABLE
from edge_api.settings import Settings


def read_password() -> str:
    """From stdin when it is not a terminal (scripts, `echo ... |`), else typed twice without echo."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


async def _with_connection(settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[int]]) -> int:
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=settings.database_timeout_s)
    except DATABASE_UNAVAILABLE as exc:
        click.echo(f"error: cannot reach PostgreSQL: {exc}", err=True)
        return 2
    try:
        return await work(conn)
    except asyncpg.UndefinedTableError:
        click.echo("error: no users table: run `nearcart db migrate` first", err=True)
        return 2
    finally:
        await conn.close()


def _checked(email: str, role: str | None = None) -> str | None:
    """The normalized email, or None after saying what is wrong with the email or role."""
    try:
        if role is not None:
            parse_role(role)
        return normalize_email(email)
    except (UserError, RoleError) as exc:
        click.echo(f"error: {exc}", err=True)
        return None


def _new_password() -> str | None:
    password = read_password()
    try:
        check_new_password(password)
    except PasswordError as exc:
        click.echo(f"error: {exc}", err=True)
        return None
    return password


# (connection, email, password) -> whether it was done.
Action = Callable[[asyncpg.Connection, str, str], Awaitable[bool]]


async def _run(
    settings: Settings, email: str, action: Action, done: str, refused: str, role: str | None = None,
    with_password: bool = True,
) -> int:
    """Check the email (and role), read a new password if one is needed, run the action; `{email}` in messages."""
    address = _checked(email, role)
    if address is None:
        return 1
    password = _new_password() if with_password else ""
    if password is None:
        return 1

    async def work(conn: asyncpg.Connection) -> int:
        if not await action(conn, address, password):
            click.echo("error: " + refused.format(email=address), err=True)
            return 1
        click.echo(done.format(email=address))
        return 0

    return await _with_connection(settings, work)


async def run_add(settings: Settings, email: str, role: str) -> int:
    async def add(conn: asyncpg.Connection, address: str, password: str) -> bool:
        return await add_user(conn, address, role, password)

    refused = "{email} already exists (change the password with `nearcart users passwd`)"
    return await _run(settings, email, add, "added {email} (" + role + ")", refused, role=role)


async def run_passwd(settings: Settings, email: str) -> int:
    done = "password changed for {email}; their open sessions are closed"
    return await _run(settings, email, set_password, done, "no user {email}")


async def run_remove(settings: Settings, email: str) -> int:
    async def remove(conn: asyncpg.Connection, address: str, password: str) -> bool:
        return await remove_user(conn, address)

    done = "removed {email}; their open sessions are closed"
    return await _run(settings, email, remove, done, "no user {email}", with_password=False)
