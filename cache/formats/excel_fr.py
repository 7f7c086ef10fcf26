"""nearcart's own columns as French Excel saves them: `;`, Windows-1252 or UTF-8 with BOM, CRLF, `2,99`.

Excel also shows long numbers in scientific notation and saves them so (`3,01762E+12`): a GTIN
written that way lost its last digits, so it is refused with what to do, not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from cache.feed_errors import FeedError, quote
from cache.formats.base import Canonical, Source
from cache.formats.delimited import Records, as_decimal, mapped
from cache.formats.retailer import RetailerFormat

_DECIMALS = ("price", "lat", "lon", "quantity")
_SCIENTIFIC = re.compile(r"\d+(?:[.,]\d+)?[eE]\+?\d+")


class ExcelFr(RetailerFormat):
    """nearcart's columns of any kind, as French Excel saves them."""

    name = "excel-fr"

    def parse(self, source: Source) -> Iterator[Canonical]:
        records = Records(source.stream, source.name, source.options.max_line, delimiter=";")
        names = [name.strip().lower() for name in records.header]
        found = {c: names.index(c) for c in source.columns if c in names}
        missing = [c for c in source.columns if c in source.required and c not in found]
        if missing:
            raise FeedError(f"{source.name}: header lacks {', '.join(missing)}; the {source.kind} feed has columns "
                            + ", ".join(source.columns) + " (separated by ;)")
        decimals = [c for c in _DECIMALS if c in found]

        def convert(row: dict[str, str]) -> dict[str, str] | tuple[str, str]:
            for column in decimals:
                row[column] = as_decimal(row[column])
            gtin = row.get("gtin", "")
            if _SCIENTIFIC.fullmatch(gtin.strip()):
                return "gtin", f"{quote(gtin)} is in Excel's scientific notation: format the column as text"
            return row

        return mapped(records, convert, found)
