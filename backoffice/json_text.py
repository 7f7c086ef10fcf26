"""Campaign JSON as people read it: pretty-printed, with the line of every JSON path, and diffs of two versions.

The editor shows each error with its path and the line it is on, so the line map
must come from the very text in the textarea: `pretty` writes that text itself
(the same as `json.dumps(indent=2)`) and notes where each value starts.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

import msgspec

from edge_api.schemas import Campaign

_BYTE = re.compile(r"\(byte (\d+)\)")
_LAST_STEP = re.compile(r"(?:\.[^.\[]*|\[\d+\])$")


def pretty(value: Any) -> tuple[str, dict[str, int]]:
    """(text, {JSON path: 1-based line}) of a decoded JSON value."""
    lines: list[str] = []
    where: dict[str, int] = {}

    def emit(item: Any, path: str, depth: int, prefix: str, suffix: str) -> None:
        where[path] = len(lines) + 1
        pad = "  " * depth
        if isinstance(item, dict) and item:
            lines.append(f"{pad}{prefix}{{")
            for i, (key, child) in enumerate(item.items()):
                comma = "," if i < len(item) - 1 else ""
                emit(child, f"{path}.{key}", depth + 1, json.dumps(str(key), ensure_ascii=False) + ": ", comma)
            lines.append(f"{pad}}}{suffix}")
        elif isinstance(item, list) and item:
            lines.append(f"{pad}{prefix}[")
            for i, child in enumerate(item):
                emit(child, f"{path}[{i}]", depth + 1, "", "," if i < len(item) - 1 else "")
            lines.append(f"{pad}]{suffix}")
        else:
            lines.append(f"{pad}{prefix}{json.dumps(item, ensure_ascii=False)}{suffix}")

    emit(value, "$", 0, "", "")
    return "\n".join(lines) + "\n", where


def line_of(path: str, where: dict[str, int]) -> int:
    """The line of `path`, or of its nearest ancestor present (a missing field is reported on its object)."""
    while path not in where and path != "$":
        shorter = _LAST_STEP.sub("", path)
        if shorter == path:
            break
        path = shorter or "$"
    return where.get(path, 1)


def line_of_byte(text: str, message: str) -> int:
    """The line of the byte a JSON decode error names (`... (byte 45)`), 1 when it names none."""
    match = _BYTE.search(message)
    if match is None:
        return 1
    return text.encode()[: int(match.group(1))].count(b"\n") + 1


def canonical(body: Any) -> str:
    """A stored campaign as the editor shows it: every field, in the schema's order, pretty-printed.

    A body today's schema no longer reads is shown as stored, keys sorted.
    """
    try:
        value = msgspec.json.decode(msgspec.json.encode(msgspec.convert(body, Campaign)))
    except msgspec.ValidationError:
        value = json.loads(json.dumps(body, sort_keys=True))
    return pretty(value)[0]


def unified_diff(old: Any, new: Any, old_name: str, new_name: str) -> list[str]:
    """The lines of a unified diff between two campaign bodies, pretty-printed; empty when they are equal."""
    return [
        line.rstrip("\n")
        for line in difflib.unified_diff(
            canonical(old).splitlines(keepends=True), canonical(new).splitlines(keepends=True), old_name, new_name
        )
    ]
