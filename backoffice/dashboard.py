"""`/admin/` and `/admin/export.csv`: the figures of what the person's role may see, for a period and filters.

The filters live in the query string (a plain GET form), so a view can be bookmarked and
shared; the export reads the same query string into the same `StatsView` and writes it with
`to_csv`, so the file holds exactly the figures on screen. Scope is the server's
(`stats_scope`): a brand asking for another brand's campaign gets the 404 page, whether that
campaign exists or not. A filter that cannot be read is a 400 page naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from backoffice.figures import figures_context
from backoffice.i18n import translator
from backoffice.names import campaign_products, catalog_names, mode_names, retailer_names
from backoffice.regions import DEPARTEMENTS
from backoffice.stats import StatsFilters, StatsView, stats_view, to_csv
from backoffice.stats_scope import BadFilter, OutOfScope, read_query, scoped_filters
from backoffice.web import SECURITY_HEADERS, Form, Staff, message_page, not_found, page, render
from edge_api.state import edge_state

# The page's own parameters, beside the filters: the language switch.
PAGE_PARAMS = frozenset({"lang", "format"})
FILTERS = ("from", "to", "campaign", "gtin", "retailer", "mode", "region")
# uPlot, copied from npm at set-up (`./run`, the image's build): without it the page shows tables only.
# Looked for once, at start: the file comes with a deployment, not while it runs.
CHART_LIBRARY = Path(__file__).parent / "static" / "vendor" / "uPlot.iife.min.js"
CHART_AVAILABLE = CHART_LIBRARY.exists()


async def campaigns_in_scope(request: Request, staff: Staff) -> list[dict[str, Any]]:
    if staff.who.role == "retailer":
        return []
    rows = await edge_state(request).db.fetch(
        "SELECT id, brand, updated_at FROM campaigns WHERE ($1::text IS NULL OR brand = $1) ORDER BY id LIMIT 1000",
        staff.who.subject if staff.who.role == "brand" else None,
    )
    return [dict(row) for row in rows]


async def _filters(request: Request, staff: Staff) -> StatsFilters:
    """The query string's filters within the person's scope; `BadFilter` / `OutOfScope` otherwise."""
    query = read_query(request.query_params, PAGE_PARAMS)
    return await scoped_filters(edge_state(request).db, staff.who, query)


async def _form_context(request: Request, staff: Staff, campaigns: list[dict[str, Any]],
                        scope: tuple[str, ...] | None) -> dict[str, Any]:
    """The filter form: the values asked (as typed, so a wrong one can be corrected) and the choices."""
    pool = edge_state(request).db
    _ = translator(staff.lang)
    asked = {name: request.query_params.get(name, "") for name in FILTERS}
    retailers = await retailer_names(pool) if staff.who.role != "retailer" else {}
    products = await campaign_products(pool, scope)
    return {
        "asked": asked,
        "campaign_choices": {c["id"]: c["id"] for c in campaigns},
        "product_choices": products,
        "product_options": {gtin: f"{label} · {gtin}" for gtin, label in products.items()},
        "retailer_choices": retailers,
        "mode_choices": mode_names(_),
        "region_choices": {f"FR-{code}": name for code, name in DEPARTEMENTS.items()},
    }


def _scope_campaigns(staff: Staff, campaigns: list[dict[str, Any]]) -> tuple[str, ...] | None:
    return None if staff.who.role == "admin" else tuple(c["id"] for c in campaigns)


async def dashboard(request: Request, staff: Staff, form: Form) -> Response:
    pool = edge_state(request).db
    _ = translator(staff.lang)
    campaigns = await campaigns_in_scope(request, staff)
    context: dict[str, Any] = {"campaigns": campaigns, "error": None, "view": None,
                               **await _form_context(request, staff, campaigns, _scope_campaigns(staff, campaigns))}
    try:
        filters = await _filters(request, staff)
    except OutOfScope:
        return not_found(request, staff)
    except BadFilter as exc:
        context["error"] = exc
        return render("dashboard.html", staff.lang, context, status=400, staff=staff)
    view = await stats_view(pool, filters)
    products = context["product_choices"]
    unnamed = [entry.key for entry in view.by_product if entry.key not in products]
    products = {**products, **(await catalog_names(pool, unnamed) if unnamed else {})}
    retailers = context["retailer_choices"] or await retailer_names(pool)
    context.update(
        view=view,
        export_url="/admin/export.csv?" + _export_query(context["asked"], view),
        chart_available=CHART_AVAILABLE,
        **figures_context(view, products, retailers, _, staff.lang),
    )
    return render("dashboard.html", staff.lang, context, staff=staff)


def _export_query(asked: dict[str, str], view: StatsView) -> str:
    """This view's query string for the export: the filters asked, the period as dates (today moves on)."""
    chosen = {name: value for name, value in asked.items() if value.strip()}
    return urlencode({**chosen, "from": view.from_.isoformat(), "to": view.to.isoformat()})


async def export_csv(request: Request, staff: Staff, form: Form) -> Response:
    _ = translator(staff.lang)
    try:
        filters = await _filters(request, staff)
    except OutOfScope:
        return not_found(request, staff)
    except BadFilter as exc:
        return message_page(request, staff.lang, 400, _("Please correct the form:"), f"{exc.parameter}: {exc.message}",
                            staff)
    view = await stats_view(edge_state(request).db, filters)
    filename = f"nearcart-figures-{view.from_.isoformat()}-to-{view.to.isoformat()}.csv"
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(to_csv(view), media_type="text/csv; charset=utf-8", headers=headers)


routes: list[BaseRoute] = [
    Route("/admin/", page(dashboard), methods=["GET"], name="office_dashboard"),
    Route("/admin/export.csv", page(export_csv), methods=["GET"], name="office_export"),
]
