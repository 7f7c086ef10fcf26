"""Opening a feed: gzip known by its magic bytes, a cap on the bytes read, lines with a cap on their length."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

GZIP_MAGIC = b"\x1f\x8b"
# Read at a time, and how much of a file detection sees (a header line must fit).
BLOCK = 64 * 1024


class FeedTooLarge(OSError):
    """More bytes than the limit (after gzip): the feed readers report it like a damaged file, from that point."""


class _Capped(io.RawIOBase):
    """A binary stream that refuses to give more than `limit` bytes in all."""

    def __init__(self, inner: IO[bytes], limit: int, owned: IO[bytes]) -> None:
        self._inner, self._limit, self._owned = inner, limit, owned
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._inner.readinto(buffer)  # type: ignore[attr-defined]
        self._read += count
        if self._read > self._limit:
            raise FeedTooLarge(f"larger than {self._limit:,} bytes (uncompressed); the rest is not read")
        return int(count)

    def close(self) -> None:
        try:
            self._inner.close()
            self._owned.close()  # GzipFile(fileobj=...) leaves its file open
        finally:
            super().close()


def open_feed(path: Path, max_bytes: int) -> io.BufferedReader:
    """The file's bytes, gunzipped when they are gzip (whatever its name), peekable for detection."""
    raw = open(path, "rb")  # noqa: SIM115 (closed with the returned reader)
    try:
        magic = raw.read(2)
        raw.seek(0)
        inner: Any = gzip.GzipFile(fileobj=raw, mode="rb") if magic == GZIP_MAGIC else raw
    except BaseException:
        raw.close()
        raise
    return io.BufferedReader(_Capped(inner, max_bytes, raw), BLOCK)


def numbered_lines(stream: IO[bytes], max_line: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, the line's bytes) for each line; None for a line over `max_line` bytes, skipped whole."""
    readline = stream.readline
    line = 0
    while data := readline(max_line + 1):
        line += 1
        if len(data) > max_line and not data.endswith(b"\n"):
            while (rest := readline(BLOCK)) and not rest.endswith(b"\n"):
                pass
            yield line, None
        else:
            yield line, data
