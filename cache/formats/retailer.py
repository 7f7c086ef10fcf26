"""What the formats retailers already have share: checked against the kind and --retailer, put in column order.

Retailers export Google local product inventory (TSV or XML), their Google product feed
(item id -> GTIN), Google Business Profile store sheets and, in France, CSV from Excel.
Each of those modules parses its file into `(line, {canonical column: text})` or
`(line, (field, reason))`; a `RetailerFormat` subclass turns them into the `Row`s every
format yields, so cache/row_rules.py checks them as it checks nearcart's own CSV.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping
from typing import ClassVar

from cache.feed_errors import FeedError, quote
from cache.formats.base import Canonical, Problem, Row, Source
from cache.formats.delimited import Records, mapped, require


class RetailerFormat:
    """A format reader over a parser of `Canonical` rows; the header (or XML root) is checked on construction."""

    name = ""
    # The feed kind the format's files hold; None: nearcart's columns, any kind.
    holds: str | None = None
    # Whether its files name no retailer, so --retailer must.
    needs_retailer = False

    def __init__(self, source: Source) -> None:
        if self.holds is not None and self.holds != source.kind:
            raise FeedError(f"{source.name}: the {self.name} format holds {self.holds}, not {source.kind}")
        if self.needs_retailer and not source.options.retailer:
            raise FeedError(f"{source.name}: a {self.name} file names no retailer: give --retailer ID")
        self._stream = source.stream
        self._rows = _as_rows(self.parse(source), source.columns)

    def parse(self, source: Source) -> Iterator[Canonical]:
        """The file's rows by canonical column; raises FeedError now if the file cannot be read at all."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Row]:
        return self._rows

    def close(self) -> None:
        self._stream.close()


class GoogleSheet(RetailerFormat):
    """A Google tab-separated sheet of one retailer's: columns found by name, each record through `converter`."""

    needs_retailer = True
    # Google's column names (spaces or underscores) -> the names `converter` reads; absent ones read empty.
    fields: ClassVar[Mapping[str, str]] = {}
    # For each group, the header must have one of its columns; `what` says what the sheet should have.
    needed: ClassVar[tuple[tuple[str, ...], ...]] = ()
    what = ""

    def parse(self, source: Source) -> Iterator[Canonical]:
        records = Records(source.stream, source.name, source.options.max_line)
        found = records.columns(self.fields)
        require(source.name, found, list(self.needed), self.what)
        return mapped(records, self.converter(source), found, every=self.fields.values())

    def converter(self, source: Source) -> Callable[[dict[str, str]], dict[str, str] | Problem]:
        raise NotImplementedError


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
    for line, values, problem in rows:
        if problem is None and values[0] != retailer:
            named = values[0].strip()
            if not named:
                values = (retailer, *values[1:])
            elif named != retailer:
                values, problem = (), _other_retailer(named, retailer)
        yield line, values, problem


def _other_retailer(named: str, retailer: str) -> Problem:
    return "retailer_id", f"names retailer {quote(named)}, but this feed is {quote(retailer)}'s (--retailer)"
