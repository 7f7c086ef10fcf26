"""Opens one feed file, undoes gzip, and reads it with the reader of its format.

A feed can hold tens of millions of rows, so nothing here holds a file: readers yield one
row at a time, and cache/row_rules.py turns each into a record ready for COPY.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

from cache.feed_errors import FeedError
from cache.formats.base import FormatReader, Row
from cache.formats.detect import detect_format
from cache.formats.json_lines import JsonLinesRows
from cache.formats.nearcart_csv import CsvRows

# Each format's reader, by the name detect_format gives it.
FORMATS: dict[str, type[FormatReader]] = {"csv": CsvRows, "jsonl": JsonLinesRows}


class FeedReader:
    """One feed file, opened and its header checked on construction; iterate for `Row`s.

    Raises `FeedError` when the file cannot be used at all. Damage found later (a
    truncated .gz, a non-UTF-8 byte) ends the file with one problem row, since the
    rows before it were fine and are kept.
    """

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self.fmt, compressed = detect_format(path)
        try:
            # A GzipFile is a binary stream like any other, though typeshed does not call it IO[bytes].
            raw = cast(IO[bytes], gzip.open(path, "rb")) if compressed else open(path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise FeedError(f"{path}: cannot open: {exc.strerror or exc}") from exc
        try:
            self._rows = FORMATS[self.fmt](raw, path, kind)
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
        return iter(self._rows)
