"""What a format reader is, and what it yields: rows in the feed kind's column order, by line.

A reader is built from a `Source`: an open binary stream (gzip already undone), the file's
name (for messages), the feed kind and the ingest's options. Its constructor reads what it
must to tell whether the file can be used at all (a header, a first line) and raises
`FeedError` if not; iterating yields one `Row` per line with content. Damage found later
(a truncated .gz, an undecodable byte) ends the file with one problem row of field "file",
since the rows before it were fine and are kept.
"""

from __future__ import annotations

import dataclasses
import gzip
import zlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import IO, Any, Protocol

Problem = tuple[str, str]  # (field, reason)
Row = tuple[int, tuple[Any, ...], Problem | None]  # (line number, values in COLUMNS order, problem reading the row)
# What a retailer format's parser yields (cache/formats/retailer.py puts it in column order).
Canonical = tuple[int, dict[str, str] | Problem]  # (line, canonical columns -> text, or why the row is refused)

# Errors a damaged .gz or a non-UTF-8 byte raises half-way through a file.
STREAM_ERRORS = (OSError, EOFError, zlib.error, UnicodeDecodeError)


# Limits every input has. A gzip bomb stops at MAX_FEED_BYTES; a line (or an XML item) over
# MAX_LINE_BYTES is a rejected row and the file goes on. 8 GiB is some 60 million offer rows.
MAX_FEED_BYTES = 8 * 1024**3
MAX_LINE_BYTES = 64 * 1024


@dataclasses.dataclass(frozen=True)
class FeedOptions:
    """How to read one ingest's files: forced format, whose feed it is, and what rows need from the catalog."""

    format: str | None = None
    retailer: str | None = None
    # The retailer's item id -> GTIN (its product feed, table retailer_items), for Google inventories.
    items: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # The time formats without one (Google inventory) give their rows; None: each file's modification time.
    as_of: datetime | None = None
    max_bytes: int = MAX_FEED_BYTES
    max_line: int = MAX_LINE_BYTES


@dataclasses.dataclass(frozen=True)
class Source:
    """One opened file as a format reader sees it."""

    stream: IO[bytes]
    head: bytes  # the first bytes, as detection saw them (the stream still starts there)
    name: str
    kind: str
    columns: tuple[str, ...]
    # The kind's required columns, less retailer_id when the options name the retailer.
    required: frozenset[str]
    options: FeedOptions
    as_of: datetime


class FormatReader(Protocol):
    def __init__(self, source: Source) -> None: ...

    def __iter__(self) -> Iterator[Row]: ...

    def close(self) -> None:
        """Close the stream the reader was built on."""


def describe(exc: BaseException) -> str:
    """A stream error as the report tells it."""
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, EOFError | zlib.error | gzip.BadGzipFile):
        return f"damaged gzip data ({exc})"
    return str(exc) or type(exc).__name__
