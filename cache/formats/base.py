"""What a format reader is, and what it yields: rows in the feed kind's column order, by line.

A reader is built from an open binary stream (gzip already undone), the file's path (for
messages) and the feed kind. Its constructor reads what it must to tell whether the file can be
used at all (a header, a first line) and raises `FeedError` if not; iterating yields one `Row`
per line with content. Damage found later (a truncated .gz, an undecodable byte) ends the file
with one problem row of field "file", since the rows before it were fine and are kept.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

Problem = tuple[str, str]  # (field, reason)
Row = tuple[int, tuple[Any, ...], Problem | None]  # (line number, values in COLUMNS order, problem reading the row)

# Errors a damaged .gz or a non-UTF-8 byte raises half-way through a file.
STREAM_ERRORS = (OSError, EOFError, zlib.error, UnicodeDecodeError)


class FormatReader(Protocol):
    def __init__(self, raw: IO[bytes], path: Path, kind: str) -> None: ...

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
