"""`/admin/quality`: each retailer's data quality, as the last `nearcart quality check` found it.

An admin sees every retailer, worst first (most kinds of fault, then the oldest feed), and may
ask for a check now; a
retailer sees its own, with the failing links and its choice for unconfirmed offers (shown to
shoppers as unconfirmed, or hidden from them); a brand sees nothing (404, as for anything out of its scope).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import asyncpg
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from backoffice.web import Form, Staff, not_found, page, redirect, render
from cache.keys import Keys
from cache.quality import LINKS_ALERT, REJECTED_ALERT, STALE_AFTER_S, RetailerQuality, read_quality
from cache.redis_topology import primary_client
from edge_api.quality_check import check_quality
from edge_api.settings import Settings
from edge_api.state import edge_state

log = logging.getLogger("nearcart.backoffice")

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
        "checking": bool(_running),
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


# The on-demand check running in this worker, if any (one at a time; the CronJob runs the periodic one).
_running: set[asyncio.Task[None]] = set()


async def _check_now(settings: Settings, pool: asyncpg.Pool) -> None:
    # Its own Redis client: the request path's has a 50 ms timeout, too short for the index writes of a check.
    try:
        async with primary_client(settings) as redis, pool.acquire() as conn:
            await check_quality(conn, redis, Keys(settings.redis_prefix), settings)
    except Exception:
        log.exception("on-demand quality check failed")


async def check_now(request: Request, staff: Staff, form: Form) -> Response:
    """An admin asks for a check now: it runs in the background; the page shows its figures when done."""
    if staff.who.role != "admin":
        return not_found(request, staff)
    if not _running:
        state = edge_state(request)
        task = asyncio.create_task(_check_now(state.settings, state.db), name="nearcart-quality-check")
        _running.add(task)
        task.add_done_callback(_running.discard)
    return redirect("/admin/quality?checking=1")


routes: list[BaseRoute] = [
    Route("/admin/quality/check", page(check_now), methods=["POST"], name="office_quality_check"),
    Route("/admin/quality", page(quality), methods=["GET"], name="office_quality"),
    Route("/admin/quality/{retailer}/unconfirmed", page(set_unconfirmed), methods=["POST"],
          name="office_quality_unconfirmed"),
]
