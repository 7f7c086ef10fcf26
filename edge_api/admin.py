"""`/admin/v1/...`: campaigns, statistics, stores and offers, each scoped to the caller's JWT role.

`admin` sees everything; `brand:<id>` its own campaigns (`campaigns.brand`) and
their statistics; `retailer:<id>` its own stores, offers and the statistics rows
of its retailer id. Out of scope is 403 (404 for a statistics filter, as on the back
office's pages), no or a bad token 401. Admin answers are
never cached (`Cache-Control: no-store`): they are private and change on PUT.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from backoffice.stats import stats_view, to_csv
from backoffice.stats_scope import BadFilter, OutOfScope, StatsQuery, scoped_filters
from backoffice.versions import save_campaign
from cache.db import DATABASE_UNAVAILABLE
from cache.gtin import GtinError, normalize_gtin
from cache.keys import bits_to_modes
from edge_api.admin_schemas import (
    AdminOffer,
    AdminStore,
    CampaignList,
    CampaignSaved,
    CampaignSummary,
    OfferList,
    OffersPageQuery,
    PageQuery,
    StoreList,
)
from edge_api.auth import AuthError, Principal, principal_from_header, revoked_tokens
from edge_api.campaign_rules import MAX_CAMPAIGN_BYTES, campaign_errors
from edge_api.errors import bad_parameter, error_response, split_validation_error, validation_error
from edge_api.events import BodyTooLarge, read_capped
from edge_api.schemas import Campaign, CampaignId
from edge_api.state import edge_state

NO_STORE = {"Cache-Control": "no-store"}
_encoder = msgspec.json.Encoder()

# --- plumbing --------------------------------------------------------------------------------

T = TypeVar("T")
Handler = Callable[[Request, Principal], Awaitable[Response]]


def _json(value: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        _encoder.encode(value),
        status_code=status,
        media_type="application/json",
        headers={**NO_STORE, **(headers or {})},
    )


def _unauthorized(message: str) -> Response:
    header = 'Bearer realm="nearcart-admin", error="invalid_token"'
    return error_response(
        401, message, parameter="Authorization", code="unauthorized", headers={"WWW-Authenticate": header, **NO_STORE}
    )


def forbidden(message: str, parameter: str = "") -> Response:
    return error_response(403, message, parameter=parameter, code="forbidden", headers=NO_STORE)


def guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate before the handler runs; a catalog outage becomes a 503, never a 500."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        state = edge_state(request)
        try:
            principal = principal_from_header(request.headers.get("authorization"), state.settings.effective_jwt_secret)
        except AuthError as exc:
            return _unauthorized(str(exc))
        try:
            timeout_s = state.settings.database_timeout_s
            if principal.token_id and await revoked_tokens.is_revoked(state.db, principal.token_id, timeout_s):
                return _unauthorized("token has been revoked")
            return await handler(request, principal)
        except DATABASE_UNAVAILABLE:
            return error_response(503, "the catalog is unavailable, retry shortly", headers={"Retry-After": "5"})

    return endpoint


def _query(request: Request, type_: type[T]) -> T | Response:
    try:
        return msgspec.convert(dict(request.query_params), type_, strict=False)
    except msgspec.ValidationError as exc:
        return validation_error(exc, root="query")


def _gtin(value: str | None) -> str | None | Response:
    """A `gtin` query parameter in its 14-digit form, None when absent, a 400 naming it when wrong."""
    if not value:
        return None
    try:
        return normalize_gtin(value)
    except GtinError as exc:
        return bad_parameter("gtin", str(exc))


def _path_campaign_id(request: Request) -> str | Response:
    campaign_id: str = request.path_params["campaign_id"]
    try:
        msgspec.convert(campaign_id, CampaignId)
    except msgspec.ValidationError as exc:
        return bad_parameter("id", split_validation_error(exc)[1])
    return campaign_id


# --- campaigns -------------------------------------------------------------------------------


async def list_campaigns(request: Request, who: Principal) -> Response:
    if who.role == "retailer":
        return forbidden("retailers have no access to campaigns")
    query = _query(request, PageQuery)
    if isinstance(query, Response):
        return query
    pool = edge_state(request).db
    # Admin: brand filter off ($1 NULL); brand: only its own.
    rows = await pool.fetch(
        "SELECT id, brand, etag, updated_at FROM campaigns"
        " WHERE ($1::text IS NULL OR brand = $1) AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3",
        who.subject if who.role == "brand" else None,
        query.after,
        query.limit + 1,
    )
    page = [CampaignSummary(**dict(row)) for row in rows[: query.limit]]
    more = len(rows) > query.limit
    return _json(CampaignList(campaigns=page, next=page[-1].id if more else None))


async def get_admin_campaign(request: Request, who: Principal) -> Response:
    campaign_id = _path_campaign_id(request)
    if isinstance(campaign_id, Response):
        return campaign_id
    if who.role == "retailer":
        return forbidden("retailers have no access to campaigns")
    row = await edge_state(request).db.fetchrow(
        "SELECT brand, body::text AS body, etag FROM campaigns WHERE id = $1", campaign_id
    )
    if row is None:
        return error_response(404, f"no campaign {campaign_id!r}", parameter="id", headers=NO_STORE)
    if who.role == "brand" and not who.is_brand(row["brand"]):
        return forbidden(f"campaign {campaign_id!r} belongs to another brand", parameter="id")
    return Response(row["body"], media_type="application/json", headers={**NO_STORE, "ETag": row["etag"]})


async def put_campaign(request: Request, who: Principal) -> Response:
    campaign_id = _path_campaign_id(request)
    if isinstance(campaign_id, Response):
        return campaign_id
    if who.role == "retailer":
        return forbidden("retailers have no access to campaigns")
    try:
        raw = msgspec.json.decode(await read_capped(request, MAX_CAMPAIGN_BYTES))
    except BodyTooLarge:
        return error_response(413, f"body larger than {MAX_CAMPAIGN_BYTES} bytes", parameter="body")
    except msgspec.DecodeError as exc:
        return bad_parameter("$", f"not JSON: {exc}")
    errors = campaign_errors(raw)
    if errors:
        # The one error shape names one parameter: the first path; the message lists them all.
        listed = "; ".join(f"{path}: {reason}" for path, reason in errors)
        return error_response(400, f"{len(errors)} error(s): {listed}", parameter=errors[0][0], code="invalid_campaign")
    campaign = msgspec.convert(raw, Campaign)
    if campaign.id != campaign_id:
        return bad_parameter("$.id", f"body id {campaign.id!r} differs from the path's {campaign_id!r}")
    if who.role == "brand" and not who.is_brand(campaign.brand):
        return forbidden(f"a brand may only save its own campaigns (brand {who.subject!r})", parameter="$.brand")
    state = edge_state(request)
    async with state.db.acquire() as conn, conn.transaction():
        # Serialise writers of one id so a brand cannot slip in between the owner check and the upsert.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('campaign:' || $1))", campaign_id)
        owner = await conn.fetchval("SELECT brand FROM campaigns WHERE id = $1", campaign_id)
        if owner is not None and who.role == "brand" and not who.is_brand(owner):
            return forbidden(f"campaign {campaign_id!r} belongs to another brand", parameter="id")
        # Kept as a version too (by the token's subject), like an edit in the back office.
        etag, _ = await save_campaign(conn, campaign, who.user or "api", state.settings.database_timeout_s)
    created = owner is None
    saved = CampaignSaved(id=campaign.id, brand=campaign.brand, etag=etag, created=created)
    return _json(saved, status=201 if created else 200, headers={"ETag": etag})


# --- statistics ------------------------------------------------------------------------------


async def stats(request: Request, who: Principal) -> Response:
    query = _query(request, StatsQuery)
    if isinstance(query, Response):
        return query
    pool = edge_state(request).db
    try:
        filters = await scoped_filters(pool, who, query)
    except OutOfScope as exc:
        # As on the back office's pages: what a role may not see is not there, no hint that it exists.
        return error_response(404, exc.message, parameter=exc.parameter, headers=NO_STORE)
    except BadFilter as exc:
        return bad_parameter(exc.parameter, exc.message)
    view = await stats_view(pool, filters)
    if query.format == "csv":
        return Response(to_csv(view), media_type="text/csv; charset=utf-8", headers=NO_STORE)
    return _json(view)


# --- retailers' stores and offers ------------------------------------------------------------


def _retailer_in_scope(request: Request, who: Principal) -> str | Response:
    retailer_id: str = request.path_params["retailer_id"]
    if who.role == "admin" or who.is_retailer(retailer_id):
        return retailer_id
    return forbidden(f"no access to retailer {retailer_id!r}", parameter="retailer_id")


async def _unknown_retailer(pool: asyncpg.Pool, retailer_id: str) -> Response | None:
    if await pool.fetchval("SELECT 1 FROM retailers WHERE retailer_id = $1", retailer_id) is None:
        return error_response(404, f"no retailer {retailer_id!r}", parameter="retailer_id", headers=NO_STORE)
    return None


async def list_stores(request: Request, who: Principal) -> Response:
    retailer_id = _retailer_in_scope(request, who)
    if isinstance(retailer_id, Response):
        return retailer_id
    query = _query(request, PageQuery)
    if isinstance(query, Response):
        return query
    pool = edge_state(request).db
    rows = await pool.fetch(
        "SELECT store_id AS id, name, address, postal_code, city, country, lat, lon, updated_at FROM stores"
        " WHERE retailer_id = $1 AND ($2::text IS NULL OR store_id > $2) ORDER BY store_id LIMIT $3",
        retailer_id,
        query.after,
        query.limit + 1,
    )
    if not rows and query.after is None and (missing := await _unknown_retailer(pool, retailer_id)):
        return missing
    page = [AdminStore(**dict(row)) for row in rows[: query.limit]]
    more = len(rows) > query.limit
    return _json(StoreList(retailer_id=retailer_id, stores=page, next=page[-1].id if more else None))


def _offer_cursor(offer: AdminOffer) -> str:
    # A GTIN never holds "/", so the first one splits the cursor whatever the store id contains.
    return f"{offer.gtin}/{offer.store_id}"


async def list_offers(request: Request, who: Principal) -> Response:
    retailer_id = _retailer_in_scope(request, who)
    if isinstance(retailer_id, Response):
        return retailer_id
    query = _query(request, OffersPageQuery)
    if isinstance(query, Response):
        return query
    gtin = _gtin(query.gtin)
    if isinstance(gtin, Response):
        return gtin
    after_gtin, after_store = "", ""
    if query.after is not None:
        after_gtin, sep, after_store = query.after.partition("/")
        if not sep:
            return bad_parameter("after", "not a cursor from a previous page's `next`")
    pool = edge_state(request).db
    rows = await pool.fetch(
        "SELECT gtin, store_id, price::text AS price, currency, quantity, modes, updated_at FROM offers"
        " WHERE retailer_id = $1 AND ($2::text IS NULL OR gtin = $2)"
        "   AND (gtin, store_id) > ($3, $4) ORDER BY gtin, store_id LIMIT $5",
        retailer_id,
        gtin,
        after_gtin,
        after_store,
        query.limit + 1,
    )
    if not rows and query.after is None and (missing := await _unknown_retailer(pool, retailer_id)):
        return missing
    page = [_offer(row) for row in rows[: query.limit]]
    more = len(rows) > query.limit
    return _json(OfferList(retailer_id=retailer_id, offers=page, next=_offer_cursor(page[-1]) if more else None))


def _offer(row: Any) -> AdminOffer:
    return AdminOffer(
        gtin=row["gtin"],
        store_id=row["store_id"],
        price=row["price"],
        currency=row["currency"],
        quantity=row["quantity"],
        modes=list(bits_to_modes(row["modes"])),
        updated_at=row["updated_at"],
    )


routes: list[BaseRoute] = [
    Route("/admin/v1/campaigns", guarded(list_campaigns), methods=["GET"], name="admin_campaigns"),
    Route("/admin/v1/campaigns/{campaign_id}", guarded(get_admin_campaign), methods=["GET"], name="admin_campaign"),
    Route("/admin/v1/campaigns/{campaign_id}", guarded(put_campaign), methods=["PUT"], name="admin_put_campaign"),
    Route("/admin/v1/stats", guarded(stats), methods=["GET"], name="admin_stats"),
    Route("/admin/v1/retailers/{retailer_id}/stores", guarded(list_stores), methods=["GET"], name="admin_stores"),
    Route("/admin/v1/retailers/{retailer_id}/offers", guarded(list_offers), methods=["GET"], name="admin_offers"),
]
