"""The feed kinds and the columns each one reads: what every format turns a retailer's file into."""

from __future__ import annotations

KINDS = ("retailers", "stores", "offers", "products")

# Every column a kind reads, in record order; extra columns in a feed are ignored.
COLUMNS: dict[str, tuple[str, ...]] = {
    "retailers": ("retailer_id", "name", "logo_url", "cart_url_template", "delivery_countries", "delivery_zones"),
    "stores": ("retailer_id", "store_id", "name", "address", "postal_code", "city", "country", "lat", "lon"),
    "offers": ("retailer_id", "store_id", "gtin", "price", "currency", "quantity", "modes", "updated_at"),
    # A retailer's item id -> GTIN (its Google product feed, cache/formats/google_products.py).
    "products": ("retailer_id", "item_id", "gtin"),
}
# Columns a file must have (a CSV header, the keys of a JSON line); the others default to empty.
REQUIRED: dict[str, frozenset[str]] = {
    "retailers": frozenset({"retailer_id", "name", "cart_url_template"}),
    # lat and lon may be absent: the store is then placed at its postal code's centre (approximate).
    "stores": frozenset({"retailer_id", "store_id", "name", "country"}),
    "offers": frozenset({"retailer_id", "gtin", "price", "currency", "quantity", "modes", "updated_at"}),
    "products": frozenset({"retailer_id", "item_id", "gtin"}),
}

# The formats `--format` names, in the order cache/feed_reader.py registers their readers (a test holds
# the two lists equal); kept here so the `nearcart` command lists them without importing every reader.
FORMAT_NAMES = ("csv", "jsonl", "google-inventory", "google-inventory-xml", "google-products", "gbp", "excel-fr")
