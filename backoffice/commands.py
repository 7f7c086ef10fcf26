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


async def run_add(settings: Settings, email: str, role: str) -> int:
    address = _checked(email, role)
    if address is None:
        return 1
    password = _new_password()
    if password is None:
        return 1

    async def work(conn: asyncpg.Connection) -> int:
        if not await add_user(conn, address, role, password):
            click.echo(f"error: {address} already exists (change the password with `nearcart users passwd`)", err=True)
            return 1
        click.echo(f"added {address} ({role})")
        return 0

    return await _with_connection(settings, work)


async def run_passwd(settings: Settings, email: str) -> int:
    address = _checked(email)
    if address is None:
        return 1
    password = _new_password()
    if password is None:
        return 1

    async def work(conn: asyncpg.Connection) -> int:
        if not await set_password(conn, address, password):
            click.echo(f"error: no user {address}", err=True)
            return 1
        click.echo(f"password changed for {address}; their open sessions are closed")
        return 0

    return await _with_connection(settings, work)


async def run_remove(settings: Settings, email: str) -> int:
    address = _checked(email)
    if address is None:
        return 1

    async def work(conn: asyncpg.Connection) -> int:
        if not await remove_user(conn, address):
            click.echo(f"error: no user {address}", err=True)
            return 1
        click.echo(f"removed {address}; their open sessions are closed")
        return 0

    return await _with_connection(settings, work)
