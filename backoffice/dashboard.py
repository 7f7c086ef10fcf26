"""`/admin/`: the dashboard of what the person's role may see.

For now it lists the campaigns in scope (an admin: all; a brand: its own; a retailer:
none). The statistics (SPEC "Statistics") fill the template's `{% block figures %}`:
`figures_context` is where their data joins the page's context.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from backoffice.web import Form, Staff, page, render
from edge_api.state import edge_state


async def campaigns_in_scope(request: Request, staff: Staff) -> list[dict[str, Any]]:
    if staff.who.role == "retailer":
        return []
    rows = await edge_state(request).db.fetch(
        "SELECT id, brand, updated_at FROM campaigns WHERE ($1::text IS NULL OR brand = $1) ORDER BY id LIMIT 1000",
        staff.who.subject if staff.who.role == "brand" else None,
    )
    return [dict(row) for row in rows]


async def figures_context(request: Request, staff: Staff) -> dict[str, Any]:
    """What the figures block shows; empty until the statistics are added."""
    return {}


async def dashboard(request: Request, staff: Staff, form: Form) -> Response:
    context = {
        "campaigns": await campaigns_in_scope(request, staff),
        **await figures_context(request, staff),
    }
    return render("dashboard.html", staff.lang, context, staff=staff)


routes: list[BaseRoute] = [Route("/admin/", page(dashboard), methods=["GET"], name="office_dashboard")]
