"""Delimited text as retailers' tools write it: sniffed separator, UTF-8 or Windows-1252, quoted fields.

Excel in France saves `;`-separated Windows-1252 (or UTF-8 with a BOM); Google's sheets are
tab-separated UTF-8. The encoding is decided honestly once, by the first line that is not
plain ASCII: valid UTF-8 makes the file UTF-8, anything else Windows-1252. A later line the
chosen encoding cannot read is a rejected row, not a guess.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any

from cache.feed_errors import FeedError
from cache.formats.base import Canonical, Problem
from cache.formats.stream import numbered_lines

UTF8_BOM = b"\xef\xbb\xbf"
_STREAM_ERRORS = (OSError, EOFError, UnicodeDecodeError)


class Decoder:
    """Bytes of one line -> text, in the file's encoding (decided on its first non-ASCII line)."""

    def __init__(self, fallback: str | None = "cp1252") -> None:
        self.encoding: str | None = None
        self.fallback = fallback

    @property
    def name(self) -> str:
        return {"utf-8": "UTF-8", "cp1252": "Windows-1252"}.get(self.encoding or "", "UTF-8")

    def __call__(self, data: bytes) -> str:
        if data.isascii():
            return data.decode("ascii")
        if self.encoding is None:
            if data.startswith(UTF8_BOM):
                self.encoding = "utf-8"
                data = data[len(UTF8_BOM):]
            else:
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    if self.fallback is None:
                        raise
                    self.encoding = self.fallback
                else:
                    self.encoding = "utf-8"
                    return text
        return data.decode(self.encoding)


def sniff_delimiter(header: str) -> str:
    """Tab if the header has one, else whichever of `;` and `,` it has more of."""
    if "\t" in header:
        return "\t"
    return ";" if header.count(";") > header.count(",") else ","


def header_name(name: str) -> str:
    """`Store_Code `, `store code`, `STORE CODE` -> `store code` (Google spells headers either way)."""
    return " ".join(name.lstrip("\ufeff").replace("_", " ").lower().split())


class Records:
    """The records of a delimited file with the line each starts on; the header is read on construction."""

    def __init__(self, stream: IO[bytes], name: str, max_line: int, delimiter: str | None = None,
                 decoder: Decoder | None = None) -> None:
        self.name = name
        self._max_line = max_line
        self._decode = decoder or Decoder()
        self._lines = numbered_lines(stream, max_line)
        self._last = 0
        self._problem: Problem | None = None
        try:
            first = next(self._lines, None)
            if first is None or first[1] is None or not first[1].strip():
                raise FeedError(f"{name}: " + ("empty file, expected a header line" if first is None or first[1]
                                               is not None else f"header line longer than {max_line:,} bytes"))
            text = self._decode(first[1])  # a BOM makes the file UTF-8
        except UnicodeDecodeError as exc:
            raise FeedError(f"{name}: the header line is not {self._decode.name} text") from exc
        except _STREAM_ERRORS as exc:
            raise FeedError(f"{name}: cannot read: {exc}") from exc
        self.delimiter = delimiter or sniff_delimiter(text)
        self.header = next(csv.reader([text], delimiter=self.delimiter), [])
        self._last = 1

    def _text_lines(self, first: str) -> Iterator[str]:
        """`first`, then the lines after it: what csv.reader reads a quoted record from (it may span lines)."""
        yield first
        for number, data in self._lines:
            self._last = number
            if data is None:
                self._problem = self._problem or ("row", f"line longer than {self._max_line:,} bytes")
                yield "\n"
                continue
            try:
                yield self._decode(data)
            except UnicodeDecodeError:
                self._problem = self._problem or ("row", f"not {self._decode.name} text like the lines before it")
                yield "\n"

    def _quoted(self, first: str) -> list[str] | Problem:
        """The record starting with line `first`, which holds a double quote, through csv.reader."""
        self._problem = None
        try:
            fields = next(csv.reader(self._text_lines(first), delimiter=self.delimiter))
        except csv.Error as exc:
            return "row", f"not valid CSV: {exc}"
        problem, self._problem = self._problem, None
        return problem or fields

    def columns(self, aliases: Mapping[str, str]) -> dict[str, int]:
        """Canonical name -> position of each header column `aliases` knows (by `header_name`)."""
        found: dict[str, int] = {}
        for position, raw in enumerate(self.header):
            canonical = aliases.get(header_name(raw))
            if canonical is not None and canonical not in found:
                found[canonical] = position
        return found

    def __iter__(self) -> Iterator[tuple[int, list[str] | Problem]]:
        """(line the record starts on, its fields or why it is refused); blank lines are skipped.

        A line without a double quote is split on the delimiter, which is what csv.reader makes of
        it at a fraction of the cost (Google's TSV never quotes); one with a quote goes through
        csv.reader, with the lines after it when a quoted field spans them.
        """
        width = len(self.header)
        delimiter = self.delimiter
        decode = self._decode
        too_long: Problem = ("row", f"line longer than {self._max_line:,} bytes")
        try:
            for number, data in self._lines:
                self._last = number
                if data is None:
                    yield number, too_long
                    continue
                try:
                    text = decode(data)
                except UnicodeDecodeError:
                    yield number, ("row", f"not {decode.name} text like the lines before it")
                    continue
                if '"' in text:
                    fields = self._quoted(text)
                    if isinstance(fields, tuple):
                        yield number, fields
                        continue
                else:
                    fields = text.rstrip("\r\n").split(delimiter)
                if len(fields) == width:
                    yield number, fields
                elif fields and fields != [""]:
                    yield number, ("row", f"{len(fields)} columns where the header has {width}")
        except _STREAM_ERRORS as exc:
            yield self._last + 1, ("file", f"unreadable from here on: {exc}")


def mapped(records: Iterable[tuple[int, Any]], convert: Callable[[dict[str, str]], dict[str, str] | Problem],
           found: Mapping[str, int] | None = None, every: Iterable[str] = ()) -> Iterator[Canonical]:
    """Each good record through `convert` (a list of fields picked by `found`'s positions, or a dict of
    fields); problems pass as they are. Names in `every` the header lacks are given as empty."""
    picks = list(found.items()) if found is not None else None
    if picks is not None and isinstance(records, Records):
        # Absent columns read the empty string appended to every record (as nearcart's CSV reader does).
        picks += [(name, len(records.header)) for name in every if name not in dict(picks)]
    pad = picks is not None and isinstance(records, Records) and any(p == len(records.header) for _, p in picks)
    for line, fields in records:
        if isinstance(fields, tuple):
            yield line, fields
        elif picks is not None:
            if pad:
                fields.append("")
            yield line, convert({name: fields[position] for name, position in picks})
        else:
            yield line, convert(fields)


def require(name: str, found: Mapping[str, int], needed: list[tuple[str, ...]], what: str) -> None:
    """FeedError unless, for each group of `needed`, the header has one of its columns."""
    for group in needed:
        if not any(column in found for column in group):
            raise FeedError(f"{name}: header lacks {' or '.join(group)}; {what}")


def as_decimal(value: str) -> str:
    """`2,99` -> `2.99`, `1 234,5` -> `1234.5`: a French spreadsheet's number as the validators read it."""
    text = value.strip()
    if "," in text or " " in text or "\u00a0" in text or "\u202f" in text:
        text = text.replace(" ", "").replace("\u00a0", "").replace("\u202f", "")
        if text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")
    return text

