"""Retailer feeds: format detection and streaming readers with line numbers.

A feed can hold tens of millions of rows, so nothing here holds a file: readers
yield one row at a time, and cache/row_rules.py turns each into a record ready for COPY.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import msgspec

from cache.feed_errors import FeedError, quote

KINDS = ("retailers", "stores", "offers")

# Every column a kind reads, in record order; extra columns in a feed are ignored.
COLUMNS: dict[str, tuple[str, ...]] = {
    "retailers": ("retailer_id", "name", "logo_url", "cart_url_template", "delivery_countries", "delivery_zones"),
    "stores": ("retailer_id", "store_id", "name", "address", "postal_code", "city", "country", "lat", "lon"),
    "offers": ("retailer_id", "store_id", "gtin", "price", "currency", "quantity", "modes", "updated_at"),
}
# Columns a CSV header must have; the others default to empty.
REQUIRED: dict[str, frozenset[str]] = {
    "retailers": frozenset({"retailer_id", "name", "cart_url_template"}),
    "stores": frozenset({"retailer_id", "store_id", "name", "country", "lat", "lon"}),
    "offers": frozenset({"retailer_id", "gtin", "price", "currency", "quantity", "modes", "updated_at"}),
}

# A JSON line may carry a retailer's delivery zones (a country's outline is a few MB); nothing needs more.
MAX_JSON_LINE = 16 * 1024 * 1024
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
# Text the CSV reader takes at a time: a damaged file loses the rows of the block its damage is in
# (TextIOWrapper decoded 8 kB at a time, so a few rows were lost before too).
_CSV_BLOCK = 32 * 1024
# Errors a damaged .gz or a non-UTF-8 byte raises half-way through a file.
_STREAM_ERRORS = (OSError, EOFError, zlib.error, UnicodeDecodeError)

Problem = tuple[str, str]  # (field, reason)
Row = tuple[int, tuple[Any, ...], Problem | None]  # (line number, values in COLUMNS order, problem reading the row)


# --- reading -----------------------------------------------------------------------------------------------------


def detect_format(path: Path) -> tuple[str, bool]:
    """("csv" | "jsonl", gzipped) from the file name: `offers.csv`, `offers.jsonl.gz`, …"""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes.pop()
    fmt = _SUFFIXES.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise FeedError(f"{path}: unknown format; expected .csv, .jsonl or .ndjson, optionally .gz")
    return fmt, compressed


class FeedReader:
    """One feed file, opened and its header checked on construction; iterate for `Row`s.

    Raises `FeedError` when the file cannot be used at all. Damage found later (a
    truncated .gz, a non-UTF-8 byte) ends the file with one problem row, since the
    rows before it were fine and are kept.
    """

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self.columns = COLUMNS[kind]
        self.fmt, compressed = detect_format(path)
        self._fh: IO[Any]
        try:
            raw: Any = gzip.open(path, "rb") if compressed else open(path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise FeedError(f"{path}: cannot open: {exc.strerror or exc}") from exc
        try:
            if self.fmt == "csv":
                self._fh = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
                self._csv = csv.reader(self._fh)
                self._index = self._read_header()
            else:
                self._fh = raw
                self._first = self._peek_jsonl()
        except BaseException:
            raw.close()
            raise

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> FeedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Row]:
        return self._csv_rows() if self.fmt == "csv" else self._jsonl_rows()

    # CSV

    def _read_header(self) -> list[int]:
        try:
            header = next(self._csv, None)
        except (*_STREAM_ERRORS, csv.Error) as exc:
            raise FeedError(f"{self.path}: cannot read: {_describe(exc)}") from exc
        if not header:
            raise FeedError(f"{self.path}: empty file, expected a header line")
        names = [name.strip().lower() for name in header]
        missing = [c for c in self.columns if c in REQUIRED[self.kind] and c not in names]
        if missing:
            raise FeedError(
                f"{self.path}: header lacks {', '.join(missing)}; the {self.kind} feed has columns "
                + ", ".join(self.columns)
            )
        self._width = len(header)
        # Absent optional columns read the empty string appended to every row.
        return [names.index(c) if c in names else len(header) for c in self.columns]

    def _csv_rows(self) -> Iterator[Row]:
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
            except _STREAM_ERRORS as exc:
                yield line + 1, (), ("file", f"unreadable from here on: {_describe(exc)}")
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
            except _STREAM_ERRORS as exc:
                yield previous + 1, (), ("file", f"unreadable from here on: {_describe(exc)}")
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

    # JSON Lines

    def _peek_jsonl(self) -> bytes:
        try:
            first = bytes(self._fh.readline(MAX_JSON_LINE))
        except _STREAM_ERRORS as exc:
            raise FeedError(f"{self.path}: cannot read: {_describe(exc)}") from exc
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

    def _jsonl_rows(self) -> Iterator[Row]:
        columns = self.columns
        required = REQUIRED[self.kind]
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
                except _STREAM_ERRORS:
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
            except _STREAM_ERRORS as exc:
                yield line + 1, (), ("file", f"unreadable from here on: {_describe(exc)}")
                return


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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, EOFError | zlib.error | gzip.BadGzipFile):
        return f"damaged gzip data ({exc})"
    return str(exc) or type(exc).__name__
