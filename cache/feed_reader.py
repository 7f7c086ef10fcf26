"""Opens one feed file, undoes gzip, tells its format and reads it with that format's reader.

A feed can hold tens of millions of rows, so nothing here holds a file: readers yield one
row at a time, and cache/row_rules.py turns each into a record ready for COPY.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from cache.feed_errors import FeedError
from cache.feed_kinds import COLUMNS, REQUIRED
from cache.formats.base import FeedOptions, FormatReader, Row, Source
from cache.formats.detect import detect
from cache.formats.excel_fr import ExcelFr
from cache.formats.google_business_profile import GoogleBusinessProfile
from cache.formats.google_inventory import GoogleInventoryTsv, GoogleInventoryXml
from cache.formats.google_products import GoogleProducts
from cache.formats.json_lines import JsonLinesRows
from cache.formats.nearcart_csv import CsvRows
from cache.formats.retailer import for_retailer
from cache.formats.stream import BLOCK, open_feed

# Each format's reader, by the name detect() gives it (and `--format` takes).
FORMATS: dict[str, type[FormatReader]] = {
    "csv": CsvRows, "jsonl": JsonLinesRows, "google-inventory": GoogleInventoryTsv,
    "google-inventory-xml": GoogleInventoryXml, "google-products": GoogleProducts, "gbp": GoogleBusinessProfile,
    "excel-fr": ExcelFr,
}


class FeedReader:
    """One feed file, opened and its header checked on construction; iterate for `Row`s.

    Raises `FeedError` when the file cannot be used at all. Damage found later (a
    truncated .gz, a non-UTF-8 byte) ends the file with one problem row, since the
    rows before it were fine and are kept. `options` force a format and name the
    retailer whose feed this is: its rows may then leave retailer_id empty.
    """

    def __init__(self, path: Path, kind: str, options: FeedOptions | None = None) -> None:
        self.path = path
        self.kind = kind
        self.options = options or FeedOptions()
        required = REQUIRED[kind] - ({"retailer_id"} if self.options.retailer else set())
        try:
            raw = open_feed(path, self.options.max_bytes)
        except OSError as exc:
            raise FeedError(f"{path}: cannot open: {exc.strerror or exc}") from exc
        try:
            try:
                head = raw.peek(BLOCK)[:BLOCK]
            except OSError as exc:  # not gzip after all, or over max_bytes
                raise FeedError(f"{path}: cannot open: {exc.strerror or exc}") from exc
            self.fmt = self.options.format or detect(head, kind, str(path))
            reader = FORMATS.get(self.fmt)
            if reader is None:
                raise FeedError(f"{path}: unknown format {self.fmt!r}; expected one of {', '.join(FORMATS)}")
            as_of = self.options.as_of or datetime.fromtimestamp(path.stat().st_mtime, UTC)
            self._rows = reader(Source(raw, head, str(path), kind, COLUMNS[kind], required, self.options, as_of))
        except BaseException:
            raw.close()
            raise

    def close(self) -> None:
        self._rows.close()

    def __enter__(self) -> FeedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Row]:
        rows = iter(self._rows)
        retailer = self.options.retailer
        return for_retailer(rows, retailer) if retailer else rows
