"""JSON Lines feeds: one JSON object per line, keyed by column name.

Numbers become their text, and arrays of strings (modes, delivery countries) are joined
with `|`, so a row reads as it would from CSV; a retailer's `delivery_zones` stay GeoJSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from cache.feed_errors import FeedError, quote
from cache.formats.base import STREAM_ERRORS, Row, Source, describe

# A JSON line may carry a retailer's delivery zones (a country's outline is a few MB); nothing needs more.
MAX_JSON_LINE = 16 * 1024 * 1024


class JsonLinesRows:
    """The rows of one JSON Lines feed; the first line is read and checked on construction."""

    def __init__(self, source: Source) -> None:
        self.path = source.name
        self.kind = source.kind
        self.columns = source.columns
        self.required = source.required
        self._fh = source.stream
        self._first = self._peek_jsonl()

    def close(self) -> None:
        self._fh.close()

    def _peek_jsonl(self) -> bytes:
        try:
            first = bytes(self._fh.readline(MAX_JSON_LINE))
        except STREAM_ERRORS as exc:
            raise FeedError(f"{self.path}: cannot read: {describe(exc)}") from exc
        if not first:
            raise FeedError(f"{self.path}: empty file")
        if first.strip():
            try:
                obj = msgspec.json.decode(first)
            except msgspec.DecodeError:
                obj = None
            if not isinstance(obj, dict):
                raise FeedError(f"{self.path}: line 1 is not a JSON object; expected JSON Lines")
        return first

    def __iter__(self) -> Iterator[Row]:
        columns = self.columns
        required = self.required
        decode = msgspec.json.decode
        line = 0
        fh = self._fh
        text = self._first
        while text:
            line += 1
            if len(text) >= MAX_JSON_LINE and not text.endswith(b"\n"):
                try:
                    while (rest := fh.readline(MAX_JSON_LINE)) and not rest.endswith(b"\n"):
                        pass  # skip to the end of the oversized line so line numbers stay right
                except STREAM_ERRORS:
                    pass
                yield line, (), ("row", f"line longer than {MAX_JSON_LINE:,} bytes")
            elif text.strip():
                try:
                    obj = decode(text)
                except msgspec.DecodeError as exc:
                    yield line, (), ("row", f"not valid JSON: {exc}")
                else:
                    yield _jsonl_row(line, obj, columns, required)
            try:
                text = fh.readline(MAX_JSON_LINE)
            except STREAM_ERRORS as exc:
                yield line + 1, (), ("file", f"unreadable from here on: {describe(exc)}")
                return


def _jsonl_row(line: int, obj: Any, columns: tuple[str, ...], required: frozenset[str]) -> Row:
    if not isinstance(obj, dict):
        return line, (), ("row", "not a JSON object")
    values: list[Any] = []
    for column in columns:
        value = obj.get(column)
        if value is None:
            if column in required:
                return line, (), (column, "missing")
            value = ""
        elif isinstance(value, str) or column == "delivery_zones":
            pass
        elif isinstance(value, bool):
            return line, (), (column, f"expected a string, got {quote(value)}")
        elif isinstance(value, int | float):
            value = repr(value)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = "|".join(value)  # modes or delivery_countries given as a JSON array
        else:
            return line, (), (column, f"expected a string, got {quote(value)}")
        values.append(value)
    return line, tuple(values), None
