"""A retailer's Google product feed (TSV or RSS 2.0 XML) -> its item id -> GTIN rows (table retailer_items).

Only `id` and `gtin` are read: nearcart's product names come from brands, and a Google
local inventory names items by `id` alone. An item without a GTIN is refused by line,
since its offers could not be shown.
"""

from __future__ import annotations

from collections.abc import Iterator

from cache.formats.base import Canonical, Source
from cache.formats.delimited import Records, mapped, require
from cache.formats.retailer import RetailerFormat
from cache.formats.rss import RssItems

FIELDS = {"id": "id", "gtin": "gtin"}
_WHAT = "a Google product feed has id and gtin (other columns are ignored)"


class GoogleProducts(RetailerFormat):
    name = "google-products"
    holds = "products"
    needs_retailer = True

    def parse(self, source: Source) -> Iterator[Canonical]:
        if source.head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
            return mapped(RssItems(source.stream, source.name, source.options.max_line), _item)
        records = Records(source.stream, source.name, source.options.max_line)
        found = records.columns(FIELDS)
        require(source.name, found, [("id",), ("gtin",)], _WHAT)
        return mapped(records, _item, found)


def _item(fields: dict[str, str]) -> dict[str, str] | tuple[str, str]:
    item_id, gtin = fields.get("id", ""), fields.get("gtin", "")
    if item_id.strip() and not gtin.strip():
        return "gtin", f"missing for item {item_id.strip()[:40]!r}: its offers cannot be shown"
    return {"item_id": item_id, "gtin": gtin}
