"""`/admin/retailers/invite` (admins) and `/admin/join/{token}` (the invited retailer): joining without an operator.

An admin names the retailer id and an email and gets a one-time link (shown once, valid
`NEARCART_INVITE_TTL_S`). Whoever opens it sets the account's password; the link is then
spent, the `retailer:<id>` account exists, its session is open, and the retailer lands on
its own page to fill in its name, logo and basket-link template. A link unknown, expired
or already used gets the same 410 page: the answer says nothing about which it was.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from backoffice.i18n import translator
from backoffice.invites import MAX_TOKEN, InviteError, create_invite, live_invite, pending_invites
from backoffice.invites import accept_invite as spend_invite
from backoffice.passwords import PasswordError, check_new_password
from backoffice.users import find_user
from backoffice.web import (
    OUTAGES,
    Form,
    FormError,
    Staff,
    admins_only,
    csrf_matches,
    message_page,
    outage_page,
    page,
    read_form,
    render,
    request_lang,
    signed_in,
)
from edge_api.state import edge_state


def _public_base(request: Request) -> str:
    configured = edge_state(request).settings.public_url
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/")


async def _invite_page(
    request: Request, staff: Staff, form: Form | None = None, errors: list[str] | None = None, link: str = "",
    status: int = 200,
) -> Response:
    context = {
        "form": form or {"retailer_id": "", "email": ""},
        "errors": errors or [],
        "link": link,
        "invites": await pending_invites(edge_state(request).db),
        "ttl_hours": edge_state(request).settings.invite_ttl_s // 3600,
        "now": datetime.now(UTC),
    }
    return render("invite.html", staff.lang, context, status=status, staff=staff)


async def invite_form(request: Request, staff: Staff, form: Form) -> Response:
    return await _invite_page(request, staff)


async def invite(request: Request, staff: Staff, form: Form) -> Response:
    state = edge_state(request)
    try:
        token, _ = await create_invite(
            state.db, form.get("retailer_id", ""), form.get("email", ""), staff.user.email, state.settings.invite_ttl_s
        )
    except InviteError as exc:
        return await _invite_page(request, staff, form=form, errors=[str(exc)], status=422)
    # Shown in this answer only; the page is no-store and the database keeps only the token's hash.
    return await _invite_page(request, staff, link=f"{_public_base(request)}/admin/join/{token}")


def _join_csrf(secret: str, token: str) -> str:
    """The join form's CSRF token: tied to the invitation, so only the page we served can post it."""
    return hmac.new(secret.encode(), f"admin-join:{token}".encode(), hashlib.sha256).hexdigest()


def _gone(request: Request, lang: str) -> Response:
    _ = translator(lang)
    return message_page(
        request, lang, 410, _("Invitation not valid"),
        _("This invitation link has expired or was already used. Ask your nearcart contact for a new one."),
    )


async def join_form(request: Request) -> Response:
    lang = request_lang(request)
    token = request.path_params["token"][:MAX_TOKEN + 1]
    try:
        found = await live_invite(edge_state(request).db, token)
    except OUTAGES:
        return outage_page(request)
    if found is None:
        return _gone(request, lang)
    return _join_page(request, lang, token, found.retailer_id, found.email)


def _join_page(request: Request, lang: str, token: str, retailer_id: str, email: str, error: str = "",
               status: int = 200) -> Response:
    context = {
        "token": token, "retailer_id": retailer_id, "email": email, "error": error,
        "csrf": _join_csrf(edge_state(request).settings.secret, token),
    }
    return render("join.html", lang, context, status=status)


async def join(request: Request) -> Response:
    lang = request_lang(request)
    _ = translator(lang)
    token = request.path_params["token"][:MAX_TOKEN + 1]
    state = edge_state(request)
    try:
        form = await read_form(request)
    except FormError as exc:
        return message_page(request, lang, exc.status, str(exc), str(exc))
    try:
        found = await live_invite(state.db, token)
        if found is None:
            return _gone(request, lang)
        if not csrf_matches(form, _join_csrf(state.settings.secret, token)):
            return _join_page(request, lang, token, found.retailer_id, found.email,
                              _("This form has expired. Please try again."), 403)
        password = form.get("password", "")
        try:
            check_new_password(password)
        except PasswordError as exc:
            return _join_page(request, lang, token, found.retailer_id, found.email, str(exc), 422)
        if password != form.get("password_again", ""):
            return _join_page(request, lang, token, found.retailer_id, found.email,
                              _("The two passwords differ."), 422)
        try:
            spent = await spend_invite(state.db, token, password)
        except InviteError as exc:
            return _join_page(request, lang, token, found.retailer_id, found.email, str(exc), 409)
        if spent is None:
            return _gone(request, lang)
        user = await find_user(state.db, spent.email)
        assert user is not None  # created in the transaction that just committed
        return await signed_in(request, user, lang, f"/admin/retailers/{spent.retailer_id}?welcome=1")
    except OUTAGES:
        return outage_page(request)


routes: list[BaseRoute] = [
    Route("/admin/retailers/invite", page(admins_only(invite_form)), methods=["GET"], name="office_invite_form"),
    Route("/admin/retailers/invite", page(admins_only(invite)), methods=["POST"], name="office_invite"),
    Route("/admin/join/{token}", join_form, methods=["GET"], name="office_join_form"),
    Route("/admin/join/{token}", join, methods=["POST"], name="office_join"),
]
