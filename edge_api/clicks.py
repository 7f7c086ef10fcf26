"""`GET /v1/go/{token}`: a shopper's click, recorded, then sent to the retailer's basket.

The token (see `tokens.py`) is the only input, so a link cannot be bent to another
product, store or site. The retailer's own template gives the basket URL; the
campaign's UTM parameters are added; the answer may only leave for the host the
template names, and is never cached (each click must reach us to be counted).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from cache.db import DATABASE_UNAVAILABLE
from edge_api.client_ip import client_ip
from edge_api.errors import error_page
from edge_api.state import EdgeState, edge_state
from edge_api.tokens import ClickTarget, TokenError, verify_click
from geo.region import region_of

log = logging.getLogger("nearcart.clicks")
CLICKS = Counter("nearcart_clicks_total", "Clicks by outcome", ["outcome"])
QUANTITY = "1"


class UnsafeRedirect(ValueError):
    """The filled template would leave the retailer's own https host."""


def basket_url(template: str, target: ClickTarget, tracking: Mapping[str, str]) -> str:
    """The retailer's basket URL for `target`: placeholders filled URL-encoded, UTM parameters appended."""
    expected = urlsplit(template)
    filled = (
        template.replace("{gtin}", quote(target.gtin, safe=""))
        .replace("{store_id}", quote(target.store_id, safe=""))
        .replace("{qty}", QUANTITY)
    )
    parts = urlsplit(filled)
    if parts.scheme != "https" or expected.scheme != "https":
        raise UnsafeRedirect(f"basket URL is not https: {parts.scheme!r}")
    if not parts.hostname or parts.hostname != expected.hostname or parts.port != expected.port:
        raise UnsafeRedirect(f"basket URL host {parts.hostname!r} is not the template's {expected.hostname!r}")
    if parts.username or parts.password:
        raise UnsafeRedirect("basket URL carries credentials")
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {name for name, _ in query}
    # A retailer's own utm_* in its template wins: it knows its analytics better than we do.
    query += [(name, value) for name, value in tracking.items() if name not in present]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, safe=",|:"), parts.fragment))


async def _cart_template(state: EdgeState, retailer_id: str) -> str | None:
    entry = state.index.directory.retailers_by_id.get(retailer_id)
    if entry is not None:
        return entry.cart_url_template
    # Directory not loaded yet (fresh worker, Redis trouble): ask the source of truth.
    async with asyncio.timeout(state.settings.database_timeout_s):
        template = await state.db.fetchval(
            "SELECT cart_url_template FROM retailers WHERE retailer_id = $1", retailer_id
        )
    return str(template) if template is not None else None


async def _tracking(state: EdgeState, campaign_id: str) -> Mapping[str, str]:
    if not campaign_id:
        return {}
    try:
        stored = await state.campaigns.get(campaign_id)
    except DATABASE_UNAVAILABLE:
        # The shopper still gets to the basket, only without UTM parameters.
        log.warning("campaign %s unavailable for click tracking", campaign_id)
        return {}
    return stored.campaign.tracking if stored else {}


async def go(request: Request) -> Response:
    state = edge_state(request)
    try:
        target = verify_click(state.settings, request.path_params["token"])
    except TokenError as exc:
        return _refused(exc)
    try:
        template = await _cart_template(state, target.retailer_id)
    except DATABASE_UNAVAILABLE:
        CLICKS.labels("unavailable").inc()
        return error_page(503, "Please try again", "The shop list is unavailable for a moment.")
    if template is None:
        CLICKS.labels("unknown_retailer").inc()
        return error_page(404, "This shop is no longer listed", "Go back to the product page to see current offers.")
    try:
        url = basket_url(template, target, await _tracking(state, target.campaign))
    except UnsafeRedirect as exc:
        CLICKS.labels("unsafe").inc()
        log.warning("refused click to retailer %s: %s", target.retailer_id, exc)
        return error_page(400, "This link cannot be followed", "The shop's address looks wrong. No shop was opened.")
    if request.method == "GET":
        await _record(request, state, target)
    CLICKS.labels("redirected").inc()
    return RedirectResponse(
        url, status_code=302, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )


def _refused(exc: TokenError) -> Response:
    CLICKS.labels("expired" if exc.expired else "refused").inc()
    if exc.expired:
        return error_page(410, "This link has expired", "Go back to the product page to see current offers.")
    return error_page(400, "This link is not valid", "It may have been changed or cut. No shop was opened.")


async def deeper(request: Request) -> Response:
    """`/v1/go/<token>/...`: no token holds a "/", so this is a bad link (not a slash to redirect away)."""
    return _refused(TokenError("not a token"))


async def _record(request: Request, state: EdgeState, target: ClickTarget) -> None:
    ip = client_ip(request, state.settings.trusted_proxies)
    event: dict[str, str | int | float] = {
        "kind": "click",
        "campaign": target.campaign,
        "gtin": target.gtin,
        "retailer": target.retailer_id,
        "mode": _mode(target, request.query_params.get("m", "")),
        "price_cents": target.price_cents,
        "currency": target.currency,
        "region": region_of(state.geoip.lookup(ip) if state.geoip and ip else None),
        "ts": int(time.time() * 1000),
    }
    # Redis away: kept in this worker and written when it returns; the shopper is redirected anyway.
    await state.event_buffer.append([event], "click")


def _mode(target: ClickTarget, said: str) -> str:
    """The clicked offer's mode: delivery for an online offer; for a store, what the widget says.

    Both modes of one store share a link, so only the widget (`?m=`) knows which row was clicked;
    other clients' store clicks count as in store. The hint only moves a click between the two.
    """
    if not target.store_id:
        return "delivery"
    return said if said in ("in_store", "click_collect") else "in_store"


routes = [
    Route("/v1/go/{token}", go, methods=["GET"], name="click"),
    # Without it Starlette answers "/v1/go/<token>/" with a 307 to the token: a second spelling of a link.
    Route("/v1/go/{token}/{rest:path}", deeper, methods=["GET"], name="click_deeper"),
]
