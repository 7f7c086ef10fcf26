"""The feed kinds and the columns each one reads: what every format turns a retailer's file into."""

from __future__ import annotations

KINDS = ("retailers", "stores", "offers")

# Every column a kind reads, in record order; extra columns in a feed are ignored.
COLUMNS: dict[str, tuple[str, ...]] = {
    "retailers": ("retailer_id", "name", "logo_url", "cart_url_template", "delivery_countries", "delivery_zones"),
    "stores": ("retailer_id", "store_id", "name", "address", "postal_code", "city", "country", "lat", "lon"),
    "offers": ("retailer_id", "store_id", "gtin", "price", "currency", "quantity", "modes", "updated_at"),
}
# Columns a file must have (a CSV header, the keys of a JSON line); the others default to empty.
REQUIRED: dict[str, frozenset[str]] = {
    "retailers": frozenset({"retailer_id", "name", "cart_url_template"}),
    "stores": frozenset({"retailer_id", "store_id", "name", "country", "lat", "lon"}),
    "offers": frozenset({"retailer_id", "gtin", "price", "currency", "quantity", "modes", "updated_at"}),
}
