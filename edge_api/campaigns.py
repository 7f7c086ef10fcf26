"""Campaigns: validate and push a marketer's JSON, serve its public part, answer CORS for its origins.

`nearcart campaign validate` lists every error at once (not only the first one
msgspec meets), each named by its JSON path, so a marketer fixes a file in one go.
Edge workers keep campaigns in memory for a few seconds: a click or a CORS check
does not cost a PostgreSQL round trip.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cache.db import DATABASE_UNAVAILABLE
from cache.gtin import GtinError, normalize_gtin
from edge_api.errors import error_response, split_validation_error
from edge_api.schemas import Campaign, CampaignId, public_part
from edge_api.settings import Settings

CACHE_TTL_S = 5.0
# Past its TTL a kept campaign is still served while one background read refreshes it; past
# this age (PostgreSQL unreachable all along) requests wait for PostgreSQL again.
CACHE_STALE_S = 300.0
CACHE_LIMIT = 10_000
# Browsers and CDNs may keep the public part a minute; an ETag makes the re-check cheap.
PUBLIC_CACHE_CONTROL = "public, max-age=60, stale-while-revalidate=300"
MAX_CAMPAIGN_BYTES = 1024 * 1024
_public_encoder = msgspec.json.Encoder(order="deterministic")

# --- validation ------------------------------------------------------------------------------


def _kind(value: object) -> str:
    return {dict: "object", list: "array", str: "str", bool: "bool", int: "int", float: "float"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _unwrap(annotation: Any) -> tuple[Any, list[msgspec.Meta]]:
    metas: list[msgspec.Meta] = []
    while typing.get_origin(annotation) is typing.Annotated:
        annotation, *extra = typing.get_args(annotation)
        metas.extend(m for m in extra if isinstance(m, msgspec.Meta))
    return annotation, metas


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _check(value: object, annotation: Any, path: str, errors: list[tuple[str, str]]) -> None:
    """Walk objects and arrays of objects ourselves so every error is reported, not only the first."""
    tp, metas = _unwrap(annotation)
    if _is_struct(tp):
        if not isinstance(value, dict):
            errors.append((path, f"Expected `object`, got `{_kind(value)}`"))
            return
        hints = typing.get_type_hints(tp, include_extras=True)
        fields = {f.encode_name: f for f in msgspec.structs.fields(tp)}
        for key in value:
            if key not in fields:
                errors.append((f"{path}.{key}", "Object contains unknown field"))
        for name, field in fields.items():
            if name in value:
                _check(value[name], hints[field.name], f"{path}.{name}", errors)
            elif field.required:
                errors.append((f"{path}.{name}", "Object missing required field"))
        return
    if typing.get_origin(tp) is list and _is_struct(typing.get_args(tp)[0]) and isinstance(value, list):
        for meta in metas:
            if meta.min_length is not None and len(value) < meta.min_length:
                errors.append((path, f"Expected `array` of length >= {meta.min_length}"))
            if meta.max_length is not None and len(value) > meta.max_length:
                errors.append((path, f"Expected `array` of length <= {meta.max_length}"))
        for i, item in enumerate(value):
            _check(item, typing.get_args(tp)[0], f"{path}[{i}]", errors)
        return
    try:
        msgspec.convert(value, annotation)
    except msgspec.ValidationError as exc:
        sub, message = split_validation_error(exc)
        errors.append((path + sub[1:], message))


def campaign_errors(raw: object) -> list[tuple[str, str]]:
    """Every (JSON path, reason) wrong with a decoded campaign JSON; empty when it is valid."""
    errors: list[tuple[str, str]] = []
    _check(raw, Campaign, "$", errors)
    if errors:
        return errors
    campaign = msgspec.convert(raw, Campaign)
    seen: set[str] = set()
    for i, product in enumerate(campaign.products):
        try:
            gtin = normalize_gtin(product.gtin)
        except GtinError as exc:
            errors.append((f"$.products[{i}].gtin", str(exc)))
            continue
        if gtin in seen:
            errors.append((f"$.products[{i}].gtin", f"GTIN {product.gtin} is listed twice"))
        seen.add(gtin)
    for i, retailer in enumerate(campaign.retailers.include):
        if retailer in campaign.retailers.exclude:
            errors.append((f"$.retailers.include[{i}]", f"retailer {retailer!r} is both included and excluded"))
    for i, retailer in enumerate(campaign.retailers.priority):
        if retailer in campaign.retailers.exclude:
            errors.append((f"$.retailers.priority[{i}]", f"retailer {retailer!r} is excluded"))
    if len(set(campaign.modes)) != len(campaign.modes):
        errors.append(("$.modes", "a mode is listed twice"))
    if not campaign.modes:
        errors.append(("$.modes", "at least one mode is needed"))
    return errors


class CampaignFileError(Exception):
    """The file cannot be read as JSON at all."""


def load_campaign_file(path: Path) -> tuple[Campaign | None, list[tuple[str, str]]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CampaignFileError(f"{path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_CAMPAIGN_BYTES:
        return None, [("$", f"file larger than {MAX_CAMPAIGN_BYTES} bytes")]
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        return None, [("$", f"not JSON: {exc}")]
    errors = campaign_errors(raw)
    if errors:
        return None, errors
    return msgspec.convert(raw, Campaign), []


def run_validate_command(path: Path) -> int:
    """`nearcart campaign validate FILE`: 0 valid, 1 errors (one line each, JSON path first), 2 unreadable."""
    try:
        campaign, errors = load_campaign_file(path)
    except CampaignFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for json_path, message in errors:
        print(f"{json_path}: {message}")
    if campaign is None:
        print(f"{path}: {len(errors)} error(s)", file=sys.stderr)
        return 1
    print(f"{path}: campaign {campaign.id!r} is valid ({len(campaign.products)} product(s))")
    return 0


# --- storage ---------------------------------------------------------------------------------


def public_json(campaign: Campaign) -> bytes:
    return _public_encoder.encode(public_part(campaign))


def etag_of(public: bytes) -> str:
    return '"' + hashlib.sha256(public).hexdigest()[:20] + '"'


async def store_campaign(conn: asyncpg.Connection | asyncpg.Pool, campaign: Campaign, timeout_s: float) -> str:
    """Insert or replace a campaign; return its ETag."""
    etag = etag_of(public_json(campaign))
    await conn.execute(
        "INSERT INTO campaigns (id, brand, body, etag, updated_at) VALUES ($1, $2, $3::jsonb, $4, now())"
        " ON CONFLICT (id) DO UPDATE SET brand = EXCLUDED.brand, body = EXCLUDED.body, etag = EXCLUDED.etag,"
        " updated_at = now()",
        campaign.id,
        campaign.brand,
        msgspec.json.encode(campaign).decode(),
        etag,
        timeout=timeout_s,
    )
    return etag


def _ignore_failure(task: asyncio.Future[Any]) -> None:
    # A failed background refresh keeps the stale entry; the next request past its TTL tries again.
    if not task.cancelled():
        task.exception()


async def run_push_command(settings: Settings, path: Path) -> int:
    """`nearcart campaign push FILE`: validate, then store in PostgreSQL. Exit codes as `validate`."""
    try:
        campaign, errors = load_campaign_file(path)
    except CampaignFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if campaign is None:
        for json_path, message in errors:
            print(f"{json_path}: {message}")
        print(f"{path}: {len(errors)} error(s), nothing pushed", file=sys.stderr)
        return 1
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=settings.database_timeout_s)
    except DATABASE_UNAVAILABLE as exc:
        print(f"error: cannot reach PostgreSQL: {exc}", file=sys.stderr)
        return 2
    try:
        etag = await store_campaign(conn, campaign, settings.database_timeout_s)
    finally:
        await conn.close()
    print(f"pushed campaign {campaign.id!r} (ETag {etag})")
    return 0


@dataclass(frozen=True, slots=True)
class StoredCampaign:
    campaign: Campaign
    public: bytes
    etag: str


class CampaignStore:
    """Campaigns read from PostgreSQL, kept per worker for `ttl_s` (misses too, so unknown ids stay cheap).

    A kept campaign past its TTL is served as it is while a single background read refreshes
    it (stale-while-revalidate): no request waits for PostgreSQL on a campaign already known,
    and a PostgreSQL hiccup does not turn a launch's traffic into 503s. Concurrent first
    reads of one campaign share one query.
    """

    def __init__(self, pool: asyncpg.Pool, timeout_s: float, ttl_s: float = CACHE_TTL_S,
                 stale_s: float = CACHE_STALE_S) -> None:
        self.pool = pool
        self.timeout_s = timeout_s
        self.ttl_s = ttl_s
        self.stale_s = stale_s
        # id -> (fresh until, campaign or None for "no such campaign")
        self._cache: dict[str, tuple[float, StoredCampaign | None]] = {}
        self._loading: dict[str, asyncio.Future[StoredCampaign | None]] = {}
        self._origins: tuple[float, frozenset[str]] = (0.0, frozenset())

    async def get(self, campaign_id: str) -> StoredCampaign | None:
        hit = self._servable(campaign_id)
        if hit is not None:
            return hit[1]
        return await asyncio.shield(self._loading.get(campaign_id) or self._load(campaign_id))

    def known_etag(self, campaign_id: str) -> str | None:
        """The campaign's ETag as this worker knows it, without waiting; None if it knows none.

        For answers kept with the campaign they were computed for: they hold while this says
        the same. Past the TTL a background read refreshes it, as `get` does, so a pushed
        change is seen within about `ttl_s` even while every request is answered from a cache.
        """
        hit = self._servable(campaign_id)
        return hit[1].etag if hit is not None and hit[1] is not None else None

    def _servable(self, campaign_id: str) -> tuple[float, StoredCampaign | None] | None:
        """The kept entry if it may still be served (past its TTL, a background read refreshes it), else None."""
        hit = self._cache.get(campaign_id)
        if hit is None:
            return None
        now = time.monotonic()
        if hit[0] <= now:
            if now - hit[0] >= self.stale_s:
                return None
            if campaign_id not in self._loading:
                self._load(campaign_id).add_done_callback(_ignore_failure)
        return hit

    def _load(self, campaign_id: str) -> asyncio.Future[StoredCampaign | None]:
        """One read of `campaign_id` from PostgreSQL, shared by everyone who asks meanwhile."""
        task = asyncio.ensure_future(self._read(campaign_id))
        self._loading[campaign_id] = task
        task.add_done_callback(lambda _: self._loading.pop(campaign_id, None))
        return task

    async def _read(self, campaign_id: str) -> StoredCampaign | None:
        async with asyncio.timeout(self.timeout_s):
            row = await self.pool.fetchrow("SELECT body::text AS body, etag FROM campaigns WHERE id = $1", campaign_id)
        found = None
        if row is not None:
            campaign = msgspec.json.decode(row["body"], type=Campaign)
            found = StoredCampaign(campaign, public_json(campaign), row["etag"])
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[campaign_id] = (time.monotonic() + self.ttl_s, found)
        return found

    async def any_origins(self) -> frozenset[str]:
        """Origins allowed by at least one campaign (for requests that name no campaign)."""
        now = time.monotonic()
        if self._origins[0] > now:
            return self._origins[1]
        async with asyncio.timeout(self.timeout_s):
            rows = await self.pool.fetch(
                "SELECT DISTINCT jsonb_array_elements_text(body->'allowed_origins') AS origin FROM campaigns"
            )
        origins = frozenset(row["origin"] for row in rows)
        self._origins = (now + self.ttl_s, origins)
        return origins

    async def origin_allowed(self, origin: str, campaign_id: str | None) -> bool:
        if campaign_id:
            stored = await self.get(campaign_id)
            allowed = frozenset(stored.campaign.allowed_origins) if stored else frozenset()
        else:
            allowed = await self.any_origins()
        return "*" in allowed or origin in allowed


# --- the endpoint ----------------------------------------------------------------------------


def _etag_matches(if_none_match: str, etag: str) -> bool:
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


async def get_campaign(request: Request) -> Response:
    campaign_id = request.path_params["campaign_id"]
    try:
        msgspec.convert(campaign_id, CampaignId)
    except msgspec.ValidationError as exc:
        _, message = split_validation_error(exc)
        return error_response(400, message, parameter="id", code="invalid_parameter")
    store: CampaignStore = request.state.campaigns
    try:
        stored = await store.get(campaign_id)
    except DATABASE_UNAVAILABLE:
        return error_response(503, "campaigns are unavailable, retry shortly", headers={"Retry-After": "5"})
    if stored is None:
        return error_response(404, f"no campaign {campaign_id!r}", parameter="id")
    headers = {"ETag": stored.etag, "Cache-Control": PUBLIC_CACHE_CONTROL, "Vary": "Origin"}
    if _etag_matches(request.headers.get("if-none-match", ""), stored.etag):
        return Response(status_code=304, headers=headers)
    return Response(stored.public, media_type="application/json", headers=headers)


routes = [Route("/v1/campaigns/{campaign_id}", get_campaign, methods=["GET"], name="campaign")]


# --- CORS ------------------------------------------------------------------------------------

CORS_PATHS = ("/v1/",)
CORS_METHODS = "GET, POST, OPTIONS"
CORS_MAX_AGE = "600"


def _campaign_of(scope: Scope) -> str | None:
    """The campaign a browser request is made for: in the path or the `campaign` query parameter."""
    path: str = scope["path"]
    if path.startswith("/v1/campaigns/"):
        return path.removeprefix("/v1/campaigns/").split("/", 1)[0] or None
    for part in scope.get("query_string", b"").decode("latin-1").split("&"):
        if part.startswith("campaign="):
            return part.removeprefix("campaign=") or None
    return None


async def origin_allowed(scope: Scope, origin: str) -> bool:
    """Whether a browser at `origin` may read this answer (the campaign asked for lists it)."""
    store: CampaignStore | None = scope.get("state", {}).get("campaigns")
    try:
        return store is not None and await store.origin_allowed(origin, _campaign_of(scope))
    except (*DATABASE_UNAVAILABLE, msgspec.DecodeError):
        return False


def cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
    """What an allowed origin's answer carries."""
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-expose-headers", b"ETag, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"),
        (b"vary", b"Origin"),
    ]


class CampaignCORSMiddleware:
    """CORS per campaign: an origin is allowed when the campaign it asks for lists it in `allowed_origins`.

    Beacons (`/v1/events`) name their campaigns inside the body, which a preflight
    does not carry, so there an origin of any campaign is allowed. No cookies are
    used, so credentials are never allowed.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(CORS_PATHS):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if not origin:
            await self.app(scope, receive, send)
            return
        allowed = await origin_allowed(scope, origin)
        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        if preflight:
            await self._preflight(allowed, origin, headers)(scope, receive, send)
            return
        if not allowed:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *cors_headers(origin)]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    def _preflight(allowed: bool, origin: str, headers: Headers) -> Response:
        if not allowed:
            return error_response(403, f"origin {origin} is not allowed", parameter="Origin", code="origin")
        return Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": CORS_METHODS,
                "Access-Control-Allow-Headers": headers.get("access-control-request-headers", "content-type"),
                "Access-Control-Max-Age": CORS_MAX_AGE,
                "Vary": "Origin",
            },
        )
