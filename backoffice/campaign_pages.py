"""`/admin/campaigns/{id}`: edit a campaign's JSON, see its history, compare two versions, restore one.

An edit is checked with the rules of `nearcart campaign validate` (`campaign_errors`);
with any error nothing is saved and every error is listed with its JSON path and
line. Scope is decided here, on the server: an admin reaches every campaign, a brand
its own; anything else, existing or not, is the same 404.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from backoffice.i18n import translator
from backoffice.json_text import canonical, line_of, line_of_byte, pretty, unified_diff
from backoffice.versions import get_version, list_versions, lock_campaign, save_campaign
from backoffice.web import Form, Staff, not_found, page, redirect, render
from edge_api.campaign_rules import MAX_CAMPAIGN_BYTES, campaign_errors
from edge_api.schemas import Campaign, CampaignId
from edge_api.state import EdgeState, edge_state

# The JSON travels form-encoded: up to three bytes per byte of JSON, plus the other fields.
EDIT_FORM_LIMIT = 3 * MAX_CAMPAIGN_BYTES + 4096


def may_edit(staff: Staff, brand: str) -> bool:
    return staff.who.role == "admin" or staff.who.is_brand(brand)


async def _campaign_body(pool: asyncpg.Pool, staff: Staff, campaign_id: str) -> Any | None:
    """The stored JSON of a campaign this person may see; None for one that does not exist or is out of scope."""
    if staff.who.role == "retailer" or not _valid_id(campaign_id):
        return None
    row = await pool.fetchrow("SELECT brand, body::text AS body FROM campaigns WHERE id = $1", campaign_id)
    if row is None or not may_edit(staff, row["brand"]):
        return None
    return json.loads(row["body"])


def _valid_id(campaign_id: str) -> bool:
    try:
        msgspec.convert(campaign_id, CampaignId)
    except msgspec.ValidationError:
        return False
    return True


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() and len(value) < 9 else None


async def _editor(
    request: Request, staff: Staff, campaign_id: str, text: str, errors: list[tuple[str, int, str]], status: int = 200
) -> Response:
    _ = translator(staff.lang)
    notice = ""
    query = request.query_params
    if (saved := _int(query.get("saved"))) is not None:
        notice = _("Version {version} saved.", version=saved)
    elif (restored := _int(query.get("restored"))) is not None and (new := _int(query.get("as"))) is not None:
        notice = _("Version {version} restored as version {new}.", version=restored, new=new)
    elif "unchanged" in query:
        notice = _("No change: nothing was saved.")
    context = {
        "campaign_id": campaign_id,
        "text": text,
        "errors": errors,
        "notice": notice,
        "versions": await list_versions(edge_state(request).db, campaign_id),
    }
    return render("campaign.html", staff.lang, context, status=status, staff=staff)


async def edit_form(request: Request, staff: Staff, form: Form) -> Response:
    campaign_id = request.path_params["campaign_id"]
    body = await _campaign_body(edge_state(request).db, staff, campaign_id)
    if body is None:
        return not_found(request, staff)
    return await _editor(request, staff, campaign_id, canonical(body), [])


def _nul_paths(value: Any, path: str) -> list[str]:
    """Where a NUL hides in a JSON value (PostgreSQL's jsonb refuses it: a 422 here, not a 503 there)."""
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, dict):
        return [p for key, child in value.items() for p in _nul_paths(key, path) + _nul_paths(child, f"{path}.{key}")]
    if isinstance(value, list):
        return [p for i, child in enumerate(value) for p in _nul_paths(child, f"{path}[{i}]")]
    return []


def _check_edit(text: str, campaign_id: str, staff: Staff) -> tuple[Campaign | None, str, list[tuple[str, int, str]]]:
    """(campaign when valid, the text to show again, every (path, line, reason) wrong with it)."""
    if len(text.encode()) > MAX_CAMPAIGN_BYTES:
        return None, text, [("$", 1, f"larger than {MAX_CAMPAIGN_BYTES} bytes")]
    try:
        raw = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        return None, text, [("$", line_of_byte(text, str(exc)), f"not JSON: {exc}")]
    # Shown again pretty-printed, so each error's line is the line the person sees.
    shown, where = pretty(raw)
    problems = campaign_errors(raw)
    problems += [(path, "a NUL character (\\u0000) cannot be stored") for path in _nul_paths(raw, "$")]
    if not problems and isinstance(raw, dict):
        if raw.get("id") != campaign_id:
            problems.append(("$.id", f"the id must stay {campaign_id!r} (this page edits that campaign)"))
        if not may_edit(staff, str(raw.get("brand"))):
            problems.append(("$.brand", f"must stay {staff.who.subject!r}: a brand saves only its own campaigns"))
    errors = [(path, line_of(path, where), reason) for path, reason in problems]
    return (None if errors else msgspec.convert(raw, Campaign)), shown, errors


class _OutOfScope(Exception):
    """The campaign went away or changed hands between the page's check and the save."""


async def _save_in_scope(
    state: EdgeState, staff: Staff, campaign: Campaign, restored_from: int | None = None
) -> int | None:
    """Save under the campaign's lock, checking ownership again there; the new version (None: no change)."""
    async with state.db.acquire() as conn, conn.transaction():
        await lock_campaign(conn, campaign.id)
        owner = await conn.fetchval("SELECT brand FROM campaigns WHERE id = $1", campaign.id)
        if owner is None or not may_edit(staff, owner):
            raise _OutOfScope
        _, version = await save_campaign(
            conn, campaign, staff.user.email, state.settings.database_timeout_s, restored_from=restored_from
        )
    return version


async def save(request: Request, staff: Staff, form: Form) -> Response:
    campaign_id = request.path_params["campaign_id"]
    state = edge_state(request)
    if await _campaign_body(state.db, staff, campaign_id) is None:
        return not_found(request, staff)
    campaign, shown, errors = _check_edit(form.get("json", ""), campaign_id, staff)
    if campaign is None:
        return await _editor(request, staff, campaign_id, shown, errors, status=422)
    try:
        version = await _save_in_scope(state, staff, campaign)
    except _OutOfScope:
        return not_found(request, staff)
    return redirect(f"/admin/campaigns/{campaign_id}?" + (f"saved={version}" if version else "unchanged=1"))


async def restore(request: Request, staff: Staff, form: Form) -> Response:
    campaign_id = request.path_params["campaign_id"]
    state = edge_state(request)
    number = _int(form.get("version"))
    if await _campaign_body(state.db, staff, campaign_id) is None or number is None:
        return not_found(request, staff)
    old = await get_version(state.db, campaign_id, number)
    if old is None:
        return not_found(request, staff)
    campaign, shown, errors = _check_edit(json.dumps(old.body), campaign_id, staff)
    if campaign is None:
        # Rules changed since that version: show it in the editor with what to fix, save nothing.
        return await _editor(request, staff, campaign_id, shown, errors, status=422)
    try:
        version = await _save_in_scope(state, staff, campaign, restored_from=number)
    except _OutOfScope:
        return not_found(request, staff)
    if version is None:
        return redirect(f"/admin/campaigns/{campaign_id}?unchanged=1")
    return redirect(f"/admin/campaigns/{campaign_id}?restored={number}&as={version}")


async def diff(request: Request, staff: Staff, form: Form) -> Response:
    campaign_id = request.path_params["campaign_id"]
    pool = edge_state(request).db
    a, b = _int(request.query_params.get("from")), _int(request.query_params.get("to"))
    if await _campaign_body(pool, staff, campaign_id) is None or a is None or b is None:
        return not_found(request, staff)
    old, new = await get_version(pool, campaign_id, a), await get_version(pool, campaign_id, b)
    if old is None or new is None:
        return not_found(request, staff)
    lines = unified_diff(old.body, new.body, f"version {a}", f"version {b}")
    context = {"campaign_id": campaign_id, "a": a, "b": b, "lines": lines}
    return render("diff.html", staff.lang, context, staff=staff)


routes: list[BaseRoute] = [
    Route("/admin/campaigns/{campaign_id}", page(edit_form), methods=["GET"], name="office_campaign"),
    Route("/admin/campaigns/{campaign_id}", page(save, EDIT_FORM_LIMIT), methods=["POST"], name="office_save"),
    Route("/admin/campaigns/{campaign_id}/restore", page(restore), methods=["POST"], name="office_restore"),
    Route("/admin/campaigns/{campaign_id}/diff", page(diff), methods=["GET"], name="office_diff"),
]
