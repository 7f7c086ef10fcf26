"""A retailer's Google product feed (TSV or RSS 2.0 XML) -> its item id -> GTIN rows (table retailer_items).

Only `id` and `gtin` are read: nearcart's product names come from brands, and a Google
local inventory names items by `id` alone. An item without a GTIN is refused by line,
since its offers could not be shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar

from cache.formats.base import Canonical, Problem, Source
from cache.formats.delimited import mapped
from cache.formats.retailer import GoogleSheet
from cache.formats.rss import RssItems

FIELDS = {"id": "id", "gtin": "gtin"}
_WHAT = "a Google product feed has id and gtin (other columns are ignored)"


class GoogleProducts(GoogleSheet):
    """TSV as a Google sheet, or RSS 2.0 XML."""

    name = "google-products"
    holds = "products"
    fields: ClassVar[dict[str, str]] = FIELDS
    needed = (("id",), ("gtin",))
    what = _WHAT

    def parse(self, source: Source) -> Iterator[Canonical]:
        if source.head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
            return mapped(RssItems(source.stream, source.name, source.options.max_line), _item)
        return super().parse(source)

    def converter(self, source: Source) -> Callable[[dict[str, str]], dict[str, str] | Problem]:
        return _item


def _item(fields: dict[str, str]) -> dict[str, str] | tuple[str, str]:
    item_id, gtin = fields.get("id", ""), fields.get("gtin", "")
    if item_id.strip() and not gtin.strip():
        return "gtin", f"missing for item {item_id.strip()[:40]!r}: its offers cannot be shown"
    return {"item_id": item_id, "gtin": gtin}
