"""nearcart's own CSV: a header naming the columns, then one row per line (quoted fields may span lines).

UTF-8 (a byte order mark is skipped), comma-separated, as Python's csv module reads it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import IO, Any

from cache.feed_errors import FeedError
from cache.formats.base import STREAM_ERRORS, Row, Source, describe

# Text the CSV reader takes at a time: a damaged file loses the rows of the block its damage is in
# (TextIOWrapper decoded 8 kB at a time, so a few rows were lost before too).
_CSV_BLOCK = 32 * 1024


class CsvRows:
    """The rows of one CSV feed; the header is read and checked on construction."""

    def __init__(self, source: Source) -> None:
        self.path = source.name
        self.kind = source.kind
        self.columns = source.columns
        self.required = source.required
        self._fh = io.TextIOWrapper(source.stream, encoding="utf-8-sig", newline="")
        self._csv = csv.reader(self._fh)
        self._index = self._read_header()

    def close(self) -> None:
        self._fh.close()

    def _read_header(self) -> list[int]:
        try:
            header = next(self._csv, None)
        except (*STREAM_ERRORS, csv.Error) as exc:
            raise FeedError(f"{self.path}: cannot read: {describe(exc)}") from exc
        if not header:
            raise FeedError(f"{self.path}: empty file, expected a header line")
        names = [name.strip().lower() for name in header]
        missing = [c for c in self.columns if c in self.required and c not in names]
        if missing:
            raise FeedError(
                f"{self.path}: header lacks {', '.join(missing)}; the {self.kind} feed has columns "
                + ", ".join(self.columns)
            )
        self._width = len(header)
        # Absent optional columns read the empty string appended to every row.
        return [names.index(c) if c in names else len(header) for c in self.columns]

    def __iter__(self) -> Iterator[Row]:
        """Rows of the CSV body, read a block of text at a time.

        A line without a double quote, carriage return or NUL is what csv.reader makes of it when
        split on commas, at half its cost (the feed parser is the ingest's busiest loop). From the
        first block holding one of them, the rest of the file goes through csv.reader as before.
        """
        fh = self._fh
        width = self._width
        pad = any(i == width for i in self._index)
        pick = _picker(self._index)
        limit = csv.field_size_limit()
        line = self._csv.line_num
        tail = ""
        while True:
            try:
                chunk = fh.read(_CSV_BLOCK)
            except STREAM_ERRORS as exc:
                yield line + 1, (), ("file", f"unreadable from here on: {describe(exc)}")
                return
            text = tail + chunk
            if not text:
                return
            # Whole lines only; at the end of the file, the last line may lack its newline.
            cut = text.rfind("\n") + 1 if chunk else len(text)
            block, tail = text[:cut], text[cut:]
            if '"' in block or "\0" in block or ("\r" in block and block.count("\r") != block.count("\r\n")):
                yield from self._csv_reader_rows(_lines_from(text, fh), line)
                return
            if "\r" in block:
                block = block.replace("\r\n", "\n")
            lines = block.split("\n")
            if chunk:
                lines.pop()  # the empty string after the block's last newline
            for row_text in lines:
                line += 1
                row = row_text.split(",")
                if len(row_text) > limit:
                    problem = _csv_error(row_text)
                    if problem is not None:
                        yield line, (), ("row", problem)
                        continue
                if len(row) != width:
                    if row_text:  # else a blank line
                        yield line, (), _wrong_width(len(row), width)
                    continue
                if pad:
                    row.append("")
                yield line, pick(row), None

    def _csv_reader_rows(self, lines: Iterator[str], offset: int) -> Iterator[Row]:
        """Rows through csv.reader (quoted fields, line breaks within them); `offset` lines came before."""
        reader = csv.reader(lines)
        width = self._width
        pad = any(i == width for i in self._index)
        pick = _picker(self._index)
        previous = offset
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield previous + 1, (), ("row", f"not valid CSV: {exc}")
                previous = offset + reader.line_num
                continue
            except STREAM_ERRORS as exc:
                yield previous + 1, (), ("file", f"unreadable from here on: {describe(exc)}")
                return
            line = previous + 1
            previous = offset + reader.line_num
            if len(row) != width:
                if row and row != [""]:  # else a blank line
                    yield line, (), _wrong_width(len(row), width)
                continue
            if pad:
                row.append("")
            yield line, pick(row), None


def _wrong_width(columns: int, width: int) -> tuple[str, str]:
    # More fields than the header is nearly always an unquoted comma (2,99): misread columns.
    return "row", f"{columns} columns where the header has {width}"


def _lines_from(text: str, fh: IO[str]) -> Iterator[str]:
    """The lines of `text` (whose last line may go on in `fh`), then the rest of `fh`."""
    if text and not text.endswith("\n"):
        text += fh.readline()  # a line is never cut in two (nor a \r\n)
    yield from io.StringIO(text, newline="")
    yield from fh


def _csv_error(row_text: str) -> str | None:
    """csv.reader's complaint about one line without quotes, if any (a field over its size limit)."""
    try:
        next(csv.reader([row_text]))
    except csv.Error as exc:
        return f"not valid CSV: {exc}"
    return None


def _picker(index: list[int]) -> Callable[[list[str]], tuple[Any, ...]]:
    if len(index) == 1:
        return lambda row: (row[index[0]],)
    from operator import itemgetter

    return itemgetter(*index)
