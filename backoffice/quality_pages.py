"""`/admin/quality`: each retailer's data quality, as the last `nearcart quality check` found it.

An admin sees every retailer, worst first (most kinds of fault, then the oldest feed); a
retailer sees its own, with the failing links and its choice for unconfirmed offers (shown
or hidden from shoppers); a brand sees nothing (404, as for anything out of its scope).
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from backoffice.web import Form, Staff, not_found, page, redirect, render
from cache.quality import LINKS_ALERT, REJECTED_ALERT, STALE_AFTER_S, RetailerQuality, read_quality
from edge_api.state import edge_state

CHOICES = ("show", "hide")


def _worst_first(figures: list[RetailerQuality]) -> list[RetailerQuality]:
    return sorted(figures, key=lambda q: (-q.problems, -max((f.age_s for f in q.feeds), default=0), q.retailer_id))


def _scope(staff: Staff) -> str | None:
    """The retailer this person may see (None: all of them, for an admin)."""
    return staff.who.subject if staff.who.role == "retailer" else None


async def quality(request: Request, staff: Staff, form: Form) -> Response:
    if staff.who.role not in ("admin", "retailer"):
        return not_found(request, staff)
    db = edge_state(request).db
    figures = _worst_first(await read_quality(db, _scope(staff)))
    choice = ""
    if staff.who.role == "retailer":
        choice = await db.fetchval(
            "SELECT unconfirmed_offers FROM retailers WHERE retailer_id = $1", staff.who.subject
        ) or ""
    context = {
        "figures": figures,
        "own": staff.who.role == "retailer",
        "choice": choice,
        "unconfirmed_after_h": edge_state(request).settings.unconfirmed_after_s / 3600,
        "stale_after_s": STALE_AFTER_S,
        "rejected_alert": REJECTED_ALERT,
        "links_alert": LINKS_ALERT,
        "now": datetime.now(UTC),
        "saved": request.query_params.get("saved") in CHOICES,
    }
    return render("quality.html", staff.lang, context, staff=staff)


async def set_unconfirmed(request: Request, staff: Staff, form: Form) -> Response:
    """A retailer's choice for its unconfirmed offers (an admin may set any retailer's)."""
    retailer_id = request.path_params["retailer"]
    if not (staff.who.role == "admin" or (staff.who.role == "retailer" and staff.who.subject == retailer_id)):
        return not_found(request, staff)
    choice = form.get("unconfirmed_offers", "")
    if choice not in CHOICES:
        return not_found(request, staff)
    updated = await edge_state(request).db.execute(
        "UPDATE retailers SET unconfirmed_offers = $2 WHERE retailer_id = $1", retailer_id, choice
    )
    if updated == "UPDATE 0":
        return not_found(request, staff)
    return redirect(f"/admin/quality?saved={choice}")


routes: list[BaseRoute] = [
    Route("/admin/quality", page(quality), methods=["GET"], name="office_quality"),
    Route("/admin/quality/{retailer}/unconfirmed", page(set_unconfirmed), methods=["POST"],
          name="office_quality_unconfirmed"),
]
