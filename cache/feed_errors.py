"""How feed problems are told: a file that cannot be used, a rejected row, and values quoted in reasons."""

from __future__ import annotations

import msgspec


class FeedError(Exception):
    """The file cannot be used at all: missing, unknown format, wrong header (exit status 2)."""


class RowError(ValueError):
    """One row is rejected; the report names its line, this field and this reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def quote(value: object) -> str:
    """A value as the report shows it: JSON-quoted, cut at 40 characters."""
    text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
    if len(text) > 40:
        text = text[:40] + "…"
    # A lone surrogate (JSON Lines may carry "\udcff") cannot be encoded as it is: shown escaped.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return msgspec.json.encode(text).decode()
