"""The back office's small pieces: roles, the editor's line map, languages, and `nearcart users ...`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from click.testing import CliRunner

from backoffice.i18n import FRENCH, from_accept_language
from backoffice.json_text import line_of, line_of_byte, pretty
from backoffice.passwords import verify
from backoffice.roles import RoleError, parse_role
from edge_api.cli import main
from edge_api.settings import Settings

TEMPLATES = Path(__file__).resolve().parents[2] / "backoffice" / "templates"


@pytest.mark.parametrize("role", ["admin", "brand:acme", "brand:Acme_2-b", "retailer:shop.fr"])
def test_known_roles_are_accepted(role: str) -> None:
    who = parse_role(role)
    assert (who.role if who.role == "admin" else f"{who.role}:{who.subject}") == role


@pytest.mark.parametrize(
    "role", ["admin\n", "brand:acme\n", "brand:", "brand:acme corp", "brand:-acme", "root", "retailer:a:b", "Admin",
             "brand:" + "a" * 65, "brand:acme.fr"],
)
def test_anything_else_is_not_a_role(role: str) -> None:
    with pytest.raises(RoleError):
        parse_role(role)


def test_pretty_text_is_json_dumps_and_knows_each_paths_line() -> None:
    value = {"id": "x", "products": [{"gtin": "1", "label": "é"}, {"gtin": "2"}], "tracking": {}, "modes": []}
    text, where = pretty(value)
    assert text == json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    lines = text.split("\n")
    assert '"label": "é"' in lines[where["$.products[0].label"] - 1]
    assert '"gtin": "2"' in lines[where["$.products[1].gtin"] - 1]
    # A missing field is shown on the object it is missing from.
    assert line_of("$.products[1].label", where) == where["$.products[1]"]
    assert line_of("$.nowhere.deeper", where) == 1


def test_a_decode_error_is_placed_on_its_line() -> None:
    assert line_of_byte('{\n  "a": 1\n  "b": 2\n}', "JSON is malformed: expected ',' (byte 14)") == 3
    assert line_of_byte("{}", "no byte here") == 1


def test_every_template_string_has_its_french() -> None:
    used: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""_\(\s*["']([^"']+)["']""", template.read_text(encoding="utf-8")))
    python = Path(__file__).resolve().parents[2] / "backoffice"
    for module in python.glob("*.py"):
        used |= set(re.findall(r"""\b_\(\s*"([^"]+)"(?:,|\))""", module.read_text(encoding="utf-8")))
    missing = sorted(text for text in used if text not in FRENCH)
    assert not missing
    assert {"active", "revoked", "expired"} <= FRENCH.keys()


@pytest.mark.parametrize(
    ("header", "lang"),
    [("fr-FR,fr;q=0.9,en;q=0.8", "fr"), ("en-GB", "en"), ("de, fr;q=0.5, en;q=0.7", "en"), ("de", None), ("", None),
     ("fr;q=0, en;q=0.1", "en"), ("fr;q=bad", None)],
)
def test_accept_language_picks_our_best_language(header: str, lang: str | None) -> None:
    assert from_accept_language(header) == lang


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("NEARCART_DATABASE_URL", settings.database_url)
    _sql(settings, "TRUNCATE users")
    yield CliRunner()


def _sql(settings: Settings, query: str, *args: object) -> Any:
    """One query on the test database (these tests are synchronous: the command runs its own event loop)."""

    async def run() -> Any:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def _hash(settings: Settings, email: str) -> str | None:
    found: str | None = _sql(settings, "SELECT password_hash FROM users WHERE email = $1", email)
    return found


def test_users_add_reads_the_password_from_a_pipe(cli_env: CliRunner, settings: Settings) -> None:
    # The real command, its stdin a pipe (not a terminal), as a provisioning script runs it.
    nearcart = Path(sys.executable).parent / "nearcart"
    command = [str(nearcart)] if nearcart.exists() else [sys.executable, "-m", "edge_api.cli"]
    env = {**os.environ, "NEARCART_DATABASE_URL": settings.database_url}
    done = subprocess.run(
        [*command, "users", "add", "Ada@Acme.example", "--role", "brand:acme"],
        input="a long enough secret\n", capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert _sql(settings, "SELECT role FROM users WHERE email = 'ada@acme.example'") == "brand:acme"
    stored = _hash(settings, "ada@acme.example")
    assert stored is not None and stored.startswith("$argon2id$")
    assert verify(stored, "a long enough secret")
    again = cli_env.invoke(main, ["users", "add", "ada@acme.example", "--role", "admin"], input="another secret 123\n")
    assert again.exit_code == 1 and "already exists" in again.output
    assert _sql(settings, "SELECT role FROM users WHERE email = 'ada@acme.example'") == "brand:acme"


@pytest.mark.parametrize(
    ("args", "stdin", "reason"),
    [
        (["users", "add", "bob@example.com", "--role", "brand:acme\n"], "a long enough secret\n", "must be 'admin'"),
        (["users", "add", "bob@example.com", "--role", "owner"], "a long enough secret\n", "must be 'admin'"),
        (["users", "add", "not-an-email", "--role", "admin"], "a long enough secret\n", "not an email"),
        (["users", "add", "bob@example.com", "--role", "admin"], "short\n", "at least 10 characters"),
    ],
)
def test_users_add_refuses_bad_input(
    cli_env: CliRunner, settings: Settings, args: list[str], stdin: str, reason: str
) -> None:
    result = cli_env.invoke(main, args, input=stdin)
    assert result.exit_code == 1
    assert reason in result.output
    assert _sql(settings, "SELECT count(*) FROM users") == 0


def test_users_passwd_and_remove(cli_env: CliRunner, settings: Settings) -> None:
    added = cli_env.invoke(main, ["users", "add", "eve@example.com", "--role", "admin"], input="first secret 1\n")
    assert added.exit_code == 0, added.output
    changed = cli_env.invoke(main, ["users", "passwd", "eve@example.com"], input="second secret 456\n")
    assert changed.exit_code == 0, changed.output
    stored = _hash(settings, "eve@example.com")
    assert stored is not None and verify(stored, "second secret 456") and not verify(stored, "first secret 1")
    assert cli_env.invoke(main, ["users", "passwd", "nobody@example.com"], input="whatever 12345\n").exit_code == 1
    assert cli_env.invoke(main, ["users", "remove", "eve@example.com"]).exit_code == 0
    assert _hash(settings, "eve@example.com") is None
    assert cli_env.invoke(main, ["users", "remove", "eve@example.com"]).exit_code == 1
