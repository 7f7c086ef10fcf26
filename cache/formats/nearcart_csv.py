"""nearcart's own CSV: a header naming the columns, then one row per line (quoted fields may span lines).

UTF-8 (a byte order mark is skipped), comma-separated, as Python's csv module reads it. Bytes that
are not UTF-8 are decoded with `surrogateescape`, so one bad byte costs its own row (rejected, with
its line) and not the rest of the file; a line over `FeedOptions.max_line` is a rejected row too.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from typing import Any

from cache.feed_errors import FeedError
from cache.formats.base import STREAM_ERRORS, Problem, Row, Source, describe
from cache.formats.delimited import duplicated_column

# Text the CSV reader takes at a time: a damaged file loses the rows of the block its damage is in
# (TextIOWrapper decoded 8 kB at a time, so a few rows were lost before too).
_CSV_BLOCK = 32 * 1024
# What `surrogateescape` makes of a byte that is not UTF-8: one C scan per block finds any.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
NOT_UTF8: Problem = ("row", "not UTF-8 text (a byte of another encoding, e.g. Windows-1252)")


class CsvRows:
    """The rows of one CSV feed; the header is read and checked on construction."""

    def __init__(self, source: Source) -> None:
        self.path = source.name
        self.kind = source.kind
        self.columns = source.columns
        self.required = source.required
        self._max_line = source.options.max_line
        self._too_long: Problem = ("row", f"line longer than {self._max_line:,} characters")
        self._fh = io.TextIOWrapper(source.stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
        # Why the record csv.reader is reading cannot be used (set by `_checked_lines`), or None.
        self._trouble: Problem | None = None
        self._index = self._read_header()

    def close(self) -> None:
        self._fh.close()

    def _read_header(self) -> list[int]:
        try:
            first = self._fh.readline(self._max_line + 1)
        except STREAM_ERRORS as exc:
            raise FeedError(f"{self.path}: cannot read: {describe(exc)}") from exc
        if len(first) > self._max_line and not first.endswith("\n"):
            raise FeedError(f"{self.path}: header line longer than {self._max_line:,} characters")
        if _NOT_UTF8.search(first):
            raise FeedError(f"{self.path}: the header line is not UTF-8 text")
        try:
            header = next(csv.reader([first]), None)
        except csv.Error as exc:
            raise FeedError(f"{self.path}: cannot read the header: {exc}") from exc
        if not header:
            raise FeedError(f"{self.path}: empty file, expected a header line")
        names = [name.strip().lower() for name in header]
        for position, name in enumerate(names):
            if name in self.columns and name in names[:position]:
                raise duplicated_column(self.path, header[names.index(name)], header[position])
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
        max_line = self._max_line
        too_long = self._too_long
        pad = any(i == width for i in self._index)
        pick = _picker(self._index)
        limit = csv.field_size_limit()
        line = 1
        tail = ""
        while True:
            try:
                chunk = fh.read(_CSV_BLOCK)
                text = tail + chunk
                if not text:
                    return
                # Whole lines only; at the end of the file, the last line may lack its newline.
                cut = text.rfind("\n") + 1 if chunk else len(text)
                if not cut and len(text) > max_line:
                    while (rest := fh.readline(_CSV_BLOCK)) and not rest.endswith("\n"):
                        pass  # the rest of an overlong line, never held whole
                    line, tail = line + 1, ""
                    yield line, (), too_long
                    continue
            except STREAM_ERRORS as exc:
                yield line + 1, (), ("file", f"unreadable from here on: {describe(exc)}")
                return
            block, tail = text[:cut], text[cut:]
            if '"' in block or "\0" in block or ("\r" in block and block.count("\r") != block.count("\r\n")):
                yield from self._csv_reader_rows(self._checked_lines(text), line)
                return
            if "\r" in block:
                block = block.replace("\r\n", "\n")
            undecoded = _NOT_UTF8.search(block) is not None
            lines = block.split("\n")
            if chunk:
                lines.pop()  # the empty string after the block's last newline
            for row_text in lines:
                line += 1
                if len(row_text) > max_line:
                    yield line, (), too_long
                    continue
                if undecoded and _NOT_UTF8.search(row_text):
                    yield line, (), NOT_UTF8
                    continue
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

    def _checked_lines(self, text: str) -> Iterator[str]:
        """The lines of `text` (whose last line may go on), then the rest of the file, for csv.reader.

        A line over the limit is given as an empty one and one that is not UTF-8 as it is; either
        marks the record it belongs to as refused (`_trouble`), which `_csv_reader_rows` reports.
        """
        fh, max_line = self._fh, self._max_line
        if text and not text.endswith("\n"):
            text += fh.readline(max_line + 1)  # a line is never cut in two (nor a \r\n)
        lines = io.StringIO(text, newline="")
        while True:
            found = lines.readline() or fh.readline(max_line + 1)
            if not found:
                return
            if len(found) > max_line:
                if not found.endswith("\n"):
                    while (rest := fh.readline(_CSV_BLOCK)) and not rest.endswith("\n"):
                        pass
                self._trouble = self._trouble or self._too_long
                found = "\n"
            elif _NOT_UTF8.search(found):
                self._trouble = self._trouble or NOT_UTF8
            yield found

    def _csv_reader_rows(self, lines: Iterator[str], offset: int) -> Iterator[Row]:
        """Rows through csv.reader (quoted fields, line breaks within them); `offset` lines came before."""
        reader = csv.reader(lines)
        width = self._width
        pad = any(i == width for i in self._index)
        pick = _picker(self._index)
        previous = offset
        while True:
            self._trouble = None
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield previous + 1, (), self._trouble or ("row", f"not valid CSV: {exc}")
                previous = offset + reader.line_num
                continue
            except STREAM_ERRORS as exc:
                yield previous + 1, (), ("file", f"unreadable from here on: {describe(exc)}")
                return
            line = previous + 1
            previous = offset + reader.line_num
            if self._trouble is not None:
                yield line, (), self._trouble
                continue
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
