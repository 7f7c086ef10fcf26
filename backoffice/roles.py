"""Roles as the admin JWT names them: `admin`, `brand:<id>`, `retailer:<id>`, checked strictly.

The pattern is cache/identifiers.py's, the one the JWT check uses.

`fullmatch`, never `^...$`: `$` also matches before a trailing newline, and "admin\\n"
must not pass for "admin".
"""

from __future__ import annotations

from cache.identifiers import ROLE_RE
from edge_api.auth import Principal

ROLE_HELP = "'admin', 'brand:<id>' or 'retailer:<id>' (id: letters, digits, '_' or '-', at most 64)"


class RoleError(ValueError):
    """Not a role nearcart knows; the message says what is expected."""


def parse_role(role: str) -> Principal:
    """The principal a role string grants; `RoleError` when it is not exactly one of the three forms."""
    match = ROLE_RE.fullmatch(role)
    if match is None:
        raise RoleError(f"role {role!r} must be {ROLE_HELP}")
    if match.group("brand"):
        return Principal("brand", match.group("brand"))
    if match.group("retailer"):
        return Principal("retailer", match.group("retailer"))
    return Principal("admin", "")


def role_name(who: Principal) -> str:
    """The role string of a principal (its inverse of `parse_role`)."""
    return "admin" if who.role == "admin" else f"{who.role}:{who.subject}"
