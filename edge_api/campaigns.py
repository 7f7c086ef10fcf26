"""`GET /v1/campaigns/{id}`: the public part of a campaign, cacheable by browsers and CDNs.

Validation lives in `edge_api.campaign_rules`, storage and the worker's copy in
`edge_api.campaign_store`, CORS for the campaigns' origins in `edge_api.cors`.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cache.db import DATABASE_UNAVAILABLE
from edge_api.errors import error_response, split_validation_error
from edge_api.schemas import CampaignId
from edge_api.state import edge_state

# Browsers and CDNs may keep the public part a minute; an ETag makes the re-check cheap.
PUBLIC_CACHE_CONTROL = "public, max-age=60, stale-while-revalidate=300"


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
    try:
        stored = await edge_state(request).campaigns.get(campaign_id)
    except DATABASE_UNAVAILABLE:
        return error_response(503, "campaigns are unavailable, retry shortly", headers={"Retry-After": "5"})
    if stored is None:
        return error_response(404, f"no campaign {campaign_id!r}", parameter="id")
    headers = {"ETag": stored.etag, "Cache-Control": PUBLIC_CACHE_CONTROL, "Vary": "Origin"}
    if _etag_matches(request.headers.get("if-none-match", ""), stored.etag):
        return Response(status_code=304, headers=headers)
    return Response(stored.public, media_type="application/json", headers=headers)


routes = [Route("/v1/campaigns/{campaign_id}", get_campaign, methods=["GET"], name="campaign")]
