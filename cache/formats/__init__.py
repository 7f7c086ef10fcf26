"""Feeds in the formats retailers already have, turned into nearcart's canonical rows.

Retailers export Google local product inventory (TSV or XML), their Google product feed
(item id -> GTIN), Google Business Profile store sheets and, in France, CSV from Excel.
Each module here reads one of them from a binary stream (gzip already undone) and yields
`(line, {canonical column: text})` or `(line, (field, reason))`; cache/feeds.py then checks
those rows with the validators nearcart's own CSV goes through, so a rule holds once.

This module stays light (the CLI imports FORMATS): the readers are imported when used.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cache.feeds import Row

# What `--format` accepts. csv and jsonl are nearcart's own (cache/feeds.py reads them).
FORMATS = ("csv", "jsonl", "google-inventory", "google-inventory-xml", "google-products", "gbp", "excel-fr")
# The feed kind each retailer format makes rows of (csv, jsonl and excel-fr carry nearcart's columns: any kind).
FORMAT_KINDS = {
    "google-inventory": "offers", "google-inventory-xml": "offers", "google-products": "products", "gbp": "stores",
}
# Formats whose files name no retailer: their rows belong to --retailer.
NEED_RETAILER = frozenset(FORMAT_KINDS)

# Limits every input has. A gzip bomb stops at MAX_FEED_BYTES; a line (or an XML item) over
# MAX_LINE_BYTES is a rejected row and the file goes on. 8 GiB is some 60 million offer rows.
MAX_FEED_BYTES = 8 * 1024**3
MAX_LINE_BYTES = 64 * 1024

Problem = tuple[str, str]  # (field, reason)
Canonical = tuple[int, dict[str, str] | Problem]  # (line, canonical columns -> text, or why the row is refused)


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
    required: frozenset[str]
    options: FeedOptions
    as_of: datetime


def open_format(fmt: str, source: Source) -> Iterator[Row]:
    """The rows of a file in a retailer format, its header (or XML root) checked now: FeedError if unusable."""
    from cache.feeds import FeedError

    wanted = FORMAT_KINDS.get(fmt)
    if wanted is not None and wanted != source.kind:
        raise FeedError(f"{source.name}: the {fmt} format holds {wanted}, not {source.kind}")
    if fmt in NEED_RETAILER and not source.options.retailer:
        raise FeedError(f"{source.name}: a {fmt} file names no retailer: give --retailer ID")
    if fmt == "google-inventory":
        from cache.formats.google_inventory import open_tsv as opener
    elif fmt == "google-inventory-xml":
        from cache.formats.google_inventory import open_xml as opener
    elif fmt == "google-products":
        from cache.formats.google_products import open_products as opener
    elif fmt == "gbp":
        from cache.formats.google_business_profile import open_sheet as opener
    elif fmt == "excel-fr":
        from cache.formats.excel_fr import open_excel as opener
    else:
        raise FeedError(f"{source.name}: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return _as_rows(opener(source), source.columns)


def _as_rows(canonical: Iterator[Canonical], columns: tuple[str, ...]) -> Iterator[Row]:
    """Canonical dicts as the validators take them: values in the kind's column order, absent ones empty."""
    pick = operator.itemgetter(*columns)
    for line, got in canonical:
        if isinstance(got, dict):
            try:
                values = pick(got)  # a dict with every column: one C call
            except KeyError:
                values = tuple(got.get(c, "") for c in columns)
            yield line, values if isinstance(values, tuple) else (values,), None
        else:
            yield line, (), got


def for_retailer(rows: Iterator[Row], retailer: str) -> Iterator[Row]:
    """Rows of one retailer's feed: an empty retailer_id is theirs, another one is refused (never written)."""
    from cache.feeds import quote

    for line, values, problem in rows:
        if problem is None and values[0] != retailer:
            named = values[0].strip()
            if not named:
                values = (retailer, *values[1:])
            elif named != retailer:
                values, problem = (), _other_retailer(named, retailer, quote)
        yield line, values, problem


def _other_retailer(named: str, retailer: str, quote: Any) -> Problem:
    return "retailer_id", f"names retailer {quote(named)}, but this feed is {quote(retailer)}'s (--retailer)"
