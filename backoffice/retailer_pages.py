"""`/admin/retailers` (admins: every retailer) and `/admin/retailers/{id}`: a retailer's own page.

The page holds the profile form and the history of its basket-link template. A new or
changed template is never saved unseen: the first post shows the basket link it makes
for one of the retailer's offers, and only a post confirming that same template saves
it. An admin reaches every retailer; `retailer:<id>` its own; anyone else gets the 404
that a retailer which does not exist gets.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from backoffice.i18n import translator
from backoffice.invites import RETAILER_ID
from backoffice.retailer_profile import (
    Profile,
    checked_profile,
    load_profile,
    save_profile,
    template_history,
    test_link,
)
from backoffice.state import office_state
from backoffice.web import Form, Staff, not_found, page, redirect, render
from edge_api.state import edge_state

PROFILE_FIELDS = ("name", "logo_url", "cart_url_template", "delivery_countries")


def may_see_retailer(staff: Staff, retailer_id: str) -> bool:
    """Whether this person may see and change the retailer's page and feeds (an id that is not one: never)."""
    if not RETAILER_ID.fullmatch(retailer_id):
        return False
    return staff.who.role == "admin" or staff.who.is_retailer(retailer_id)


async def retailers(request: Request, staff: Staff, form: Form) -> Response:
    if staff.who.role != "admin":
        if staff.who.role == "retailer":
            return redirect(f"/admin/retailers/{staff.who.subject}")
        return not_found(request, staff)
    rows = await edge_state(request).db.fetch(
        "SELECT r.retailer_id, r.name, r.updated_at,"
        " (SELECT max(started_at) FROM feed_runs f WHERE f.retailer_id = r.retailer_id) AS last_feed"
        " FROM retailers r ORDER BY r.retailer_id LIMIT 2000"
    )
    return render("retailers.html", staff.lang, {"retailers": [dict(row) for row in rows]}, staff=staff)


def _form_of(profile: Profile | None) -> dict[str, str]:
    if profile is None:
        return dict.fromkeys(PROFILE_FIELDS, "")
    return {
        "name": profile.name, "logo_url": profile.logo_url, "cart_url_template": profile.cart_url_template,
        "delivery_countries": "|".join(profile.delivery_countries),
    }


async def _retailer_page(
    request: Request, staff: Staff, retailer_id: str, stored: Profile | None, form: dict[str, str],
    status: int = 200, **extra: Any,
) -> Response:
    _ = translator(staff.lang)
    notice = ""
    if request.query_params.get("saved"):
        notice = _("Profile saved.")
    elif request.query_params.get("welcome"):
        notice = _("Welcome! Fill in your profile: your name, logo and basket-link template.")
    context = {
        "retailer_id": retailer_id,
        "stored": stored,
        "form": form,
        "history": await template_history(edge_state(request).db, retailer_id),
        "notice": notice,
        "error": None,
        "link": None,
        **extra,
    }
    return render("retailer.html", staff.lang, context, status=status, staff=staff)


async def retailer_page(request: Request, staff: Staff, form: Form) -> Response:
    retailer_id: str = request.path_params["retailer_id"]
    if not may_see_retailer(staff, retailer_id):
        return not_found(request, staff)
    stored = await load_profile(edge_state(request).db, retailer_id)
    if stored is None and staff.who.role == "admin":
        # An admin sees retailers that exist (or are being invited); a retailer sees its own page even before its
        # profile is saved.
        invited = await edge_state(request).db.fetchval(
            "SELECT 1 FROM retailer_invites WHERE retailer_id = $1 LIMIT 1", retailer_id
        )
        if not invited:
            return not_found(request, staff)
    return await _retailer_page(request, staff, retailer_id, stored, _form_of(stored))


async def save_retailer(request: Request, staff: Staff, form: Form) -> Response:
    retailer_id: str = request.path_params["retailer_id"]
    if not may_see_retailer(staff, retailer_id):
        return not_found(request, staff)
    state = edge_state(request)
    _ = translator(staff.lang)
    stored = await load_profile(state.db, retailer_id)
    typed = {name: form.get(name, "").strip() for name in PROFILE_FIELDS}
    checked = checked_profile(retailer_id, typed["name"], typed["logo_url"], typed["cart_url_template"],
                              typed["delivery_countries"])
    if isinstance(checked, tuple):
        return await _retailer_page(request, staff, retailer_id, stored, typed, 422, error=checked)
    unchanged_template = stored is not None and stored.cart_url_template == checked.cart_url_template
    confirmed = form.get("confirmed_template", "") == checked.cart_url_template
    if form.get("action") == "check" or not (unchanged_template or confirmed):
        link = await test_link(state.db, retailer_id, checked.cart_url_template)
        if isinstance(link, str):
            return await _retailer_page(request, staff, retailer_id, stored, typed, 422,
                                        error=("cart_url_template", link))
        return await _retailer_page(request, staff, retailer_id, stored, typed, link=link)
    await save_profile(state.db, office_state(request).redis, state.keys, checked, staff.user.email)
    return redirect(f"/admin/retailers/{retailer_id}?saved=1")


routes: list[BaseRoute] = [
    Route("/admin/retailers", page(retailers), methods=["GET"], name="office_retailers"),
    Route("/admin/retailers/{retailer_id}", page(retailer_page), methods=["GET"], name="office_retailer"),
    Route("/admin/retailers/{retailer_id}", page(save_retailer), methods=["POST"], name="office_save_retailer"),
]
