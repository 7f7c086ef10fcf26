"""`/admin/tokens` (admins only; 404 for anyone else): mint an API token for a role, see and revoke tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from backoffice.api_tokens import MAX_DAYS, MAX_LABEL, list_tokens, mint, revoke
from backoffice.i18n import translator
from backoffice.roles import RoleError, parse_role
from backoffice.web import Form, Staff, admins_only, not_found, page, redirect, render
from edge_api.state import edge_state


async def _tokens_page(
    request: Request, staff: Staff, minted: str = "", errors: list[str] | None = None, form: Form | None = None,
    status: int = 200,
) -> Response:
    _ = translator(staff.lang)
    notice = ""
    if label := request.query_params.get("revoked", "")[:MAX_LABEL]:
        notice = _("Token {label} revoked.", label=label)
    context = {
        "tokens": await list_tokens(edge_state(request).db),
        "now": datetime.now(UTC),
        "minted": minted,
        "errors": errors or [],
        "form": form or {"role": "", "label": "", "days": "90"},
        "notice": notice,
        "max_days": MAX_DAYS,
    }
    return render("tokens.html", staff.lang, context, status=status, staff=staff)


async def tokens(request: Request, staff: Staff, form: Form) -> Response:
    return await _tokens_page(request, staff)


async def mint_token(request: Request, staff: Staff, form: Form) -> Response:
    _ = translator(staff.lang)
    role, label, days = form.get("role", "").strip(), form.get("label", "").strip(), form.get("days", "").strip()
    errors = []
    try:
        parse_role(role)
    except RoleError as exc:
        errors.append(str(exc))
    if not 1 <= len(label) <= MAX_LABEL or not label.isprintable():
        errors.append(_("label must have 1 to 100 printable characters"))
    if not (days.isdigit() and len(days) < 4 and 1 <= int(days) <= MAX_DAYS):
        errors.append(_("days must be a whole number from 1 to 365"))
    if errors:
        return await _tokens_page(request, staff, errors=errors, form=form, status=422)
    state = edge_state(request)
    token = await mint(state.db, state.settings.effective_jwt_secret, role, label, int(days), staff.user.email)
    # Shown in this answer only (never stored, never in a URL); the page is no-store.
    return await _tokens_page(request, staff, minted=token)


async def revoke_token(request: Request, staff: Staff, form: Form) -> Response:
    label = await revoke(edge_state(request).db, request.path_params["jti"][:100], staff.user.email)
    if label is None:
        return not_found(request, staff)
    return redirect("/admin/tokens?" + urlencode({"revoked": label}))


routes: list[BaseRoute] = [
    Route("/admin/tokens", page(admins_only(tokens)), methods=["GET"], name="office_tokens"),
    Route("/admin/tokens", page(admins_only(mint_token)), methods=["POST"], name="office_mint_token"),
    Route("/admin/tokens/{jti}/revoke", page(admins_only(revoke_token)), methods=["POST"], name="office_revoke_token"),
]
