"""Which format a feed file is in, and whether it is gzipped: the one place formats are told apart."""

from __future__ import annotations

from pathlib import Path

from cache.feed_errors import FeedError

_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


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
