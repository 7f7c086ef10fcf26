"""A `StatsView` as the dashboard shows it: named columns, named rows, numbers in the reader's language.

Every figure on screen is one of the view's, so the CSV export (`to_csv` of the same view)
holds exactly what the page shows. Loads, opens and searches happen before a retailer or a
mode exists, so the tables by retailer and by mode, and any view narrowed to a retailer or a
mode, show only offers shown, clicks and the purchase-intent value (their other columns are
zero by construction: in the CSV they stay, as zeros).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backoffice.i18n import Translate, format_count, format_money, format_rate
from backoffice.names import mode_names
from backoffice.regions import region_name
from backoffice.stats import Figures, KeyFigures, StatsView

# (StatsView field, English name as brands know it); the French is in backoffice/i18n.py.
COLUMNS = (
    ("loads", "Widget loads"),
    ("opens", "Opens"),
    ("searches", "Searches"),
    ("searches_with_offers", "Searches with offers"),
    ("searches_without_offers", "Searches without offers"),
    ("offers_shown", "Offers shown"),
    ("clicks", "Clicks"),
    ("click_through_rate", "Click-through rate"),
    ("intent_value", "Purchase-intent value"),
)
AFTER_CHOICE = ("offers_shown", "clicks", "intent_value")
# The chart's lines: the funnel, loads left out (they dwarf the rest; the table has them).
CHARTED = ("opens", "searches", "searches_with_offers", "clicks")


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    name: str
    cells: list[tuple[str, str]]  # (field, formatted figure)


@dataclass(frozen=True, slots=True)
class Table:
    name: str  # the CSV's `table` column: day, product, retailer, mode, region
    title: str
    key_title: str
    columns: list[tuple[str, str]]  # (field, translated name)
    rows: list[Row]


def _cells(figures: Figures, fields: list[str], lang: str) -> list[tuple[str, str]]:
    cells = []
    for field in fields:
        value = getattr(figures, field)
        if field == "click_through_rate":
            cells.append((field, format_rate(value, lang)))
        elif field == "intent_value":
            cells.append((field, format_money(value, lang)))
        else:
            cells.append((field, format_count(value, lang)))
    return cells


def _table(name: str, title: str, key_title: str, entries: list[tuple[str, str, Figures]], fields: list[str],
           _: Translate, lang: str) -> Table:
    columns = [(field, _(label)) for field, label in COLUMNS if field in fields]
    rows = [Row(key, shown, _cells(figures, fields, lang)) for key, shown, figures in entries]
    return Table(name, _(title), _(key_title), columns, rows)


def _named(entries: list[KeyFigures], names: dict[str, str]) -> list[tuple[str, str, Figures]]:
    return [(entry.key, names.get(entry.key, entry.key), entry) for entry in entries]


def figures_context(view: StatsView, products: dict[str, str], retailers: dict[str, str], _: Translate,
                    lang: str) -> dict[str, Any]:
    """What dashboard.html's figures block shows of `view`; `products` and `retailers` name their keys."""
    funnel = view.retailer is None and view.mode is None
    every = [field for field, _label in COLUMNS]
    fields = every if funnel else list(AFTER_CHOICE)
    modes = mode_names(_)
    regions = {entry.key: region_name(entry.key, lang) for entry in view.by_region}
    days = [(day.day.isoformat(), day.day.isoformat(), day) for day in view.daily]
    tables = [
        _table("day", "By day", "Day", list(days), fields, _, lang),
        _table("product", "By product", "Product", _named(view.by_product, products), fields, _, lang),
        _table("retailer", "By retailer", "Retailer", _named(view.by_retailer, retailers), list(AFTER_CHOICE), _,
               lang),
        _table("mode", "By mode", "Mode", _named(view.by_mode, modes), list(AFTER_CHOICE), _, lang),
        _table("region", "By region", "Region", _named(view.by_region, regions), fields, _, lang),
    ]
    totals = [(field, _(label), cell) for (field, label), (_f, cell) in
              zip([c for c in COLUMNS if c[0] in fields], _cells(view.totals, fields, lang), strict=True)]
    charted = [field for field in CHARTED if field in fields]
    chart = {
        "day_label": _("Day"),
        "days": [day.day.isoformat() for day in view.daily],
        "series": [{"field": field, "label": _(dict(COLUMNS)[field]), "values": [getattr(d, field) for d in view.daily]}
                   for field in charted],
    }
    return {"funnel": funnel, "totals": totals, "tables": tables, "chart": chart,
            "counted": any(getattr(view.totals, field) for field in ("loads", "opens", "searches", "offers_shown",
                                                                      "clicks"))}
