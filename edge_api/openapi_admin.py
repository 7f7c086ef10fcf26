"""The `/admin/v1/...` part of `/openapi.json`: brands', retailers' and admins' operations, behind a JWT.

Built from the same types that check the requests (edge_api/admin_schemas.py, the campaign
schema, the identifiers of cache/identifiers.py); edge_api/openapi.py joins it to the rest.
"""

from __future__ import annotations

from typing import Any

from backoffice.stats_scope import StatsQuery
from cache.identifiers import CampaignId, RetailerId
from edge_api.admin_schemas import (
    CampaignList,
    CampaignSaved,
    OfferList,
    OffersPageQuery,
    PageQuery,
    StoreList,
)
from edge_api.openapi_parts import REF, error, json_answer, path_parameter, query_parameters
from edge_api.schemas import Campaign

# Components these paths refer to (answers and the campaign body); queries become parameters.
ADMIN_TYPES: tuple[Any, ...] = (CampaignList, CampaignSaved, OfferList, StoreList, Campaign)
ADMIN_QUERIES: tuple[Any, ...] = (PageQuery, OffersPageQuery, StatsQuery)
SECURITY_SCHEMES = {
    "adminJwt": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "HS256; claims `sub`, `role` (`admin`, `brand:<id>`, `retailer:<id>`) and `exp`",
    }
}
PATH_TYPES = {"campaign_id": CampaignId, "retailer_id": RetailerId}


def admin_paths(queries: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The admin operations; `queries` holds the schema components of ADMIN_QUERIES by name."""

    def operation(operation_id: str, summary: str, answers: dict[str, Any], path: tuple[str, ...] = (),
                  query: str = "", body: bool = False) -> dict[str, Any]:
        parameters = [path_parameter(name, PATH_TYPES[name]) for name in path]
        if query:
            parameters += query_parameters(queries[query])
        found: dict[str, Any] = {
            "summary": summary,
            "operationId": operation_id,
            "security": [{"adminJwt": []}],
            "parameters": parameters,
            "responses": {
                **answers,
                "400": error("a parameter is wrong; `error.parameter` names it"),
                "401": error("no token, or one that is forged, expired or revoked"),
                "403": error("the token's role may not see this"),
                "503": error("the catalog cannot be read right now"),
            },
        }
        if body:
            found["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": {"$ref": REF.format(name="Campaign")}}}}
            found["responses"]["413"] = error("body over 1 MB")
        return found

    return {
        "/admin/v1/campaigns": {"get": operation(
            "adminListCampaigns", "Campaigns the caller may see, by id",
            {"200": json_answer("CampaignList", "one page; `next` is the cursor of the next")}, query="PageQuery")},
        "/admin/v1/campaigns/{campaign_id}": {
            "get": operation("adminGetCampaign", "A whole campaign, as stored",
                             {"200": json_answer("Campaign", "the campaign JSON"),
                              "404": error("no such campaign")}, path=("campaign_id",)),
            "put": operation("adminPutCampaign", "Store a campaign (a new version of it)",
                             {"200": json_answer("CampaignSaved", "replaced"),
                              "201": json_answer("CampaignSaved", "created")},
                             path=("campaign_id",), body=True),
        },
        "/admin/v1/stats": {"get": {
            **operation("getStats", "Statistics: totals, a daily series, tables by product, retailer, mode and region",
                        {"200": {"description": "the figures of the period and filters", "content": {
                            "application/json": {"schema": {"$ref": REF.format(name="StatsView")}},
                            "text/csv": {"schema": {"type": "string"}}}},
                         "404": error("a campaign or retailer outside the token's scope (as one that does not exist)")},
                        query="StatsQuery"),
            "description": "Scoped to the token's role: an admin sees every campaign, a brand its own, a"
            " retailer the rows of its retailer id. `format=csv` gives the same figures as CSV.",
        }},
        "/admin/v1/retailers/{retailer_id}/stores": {"get": operation(
            "adminListStores", "A retailer's stores",
            {"200": json_answer("StoreList", "one page"), "404": error("no such retailer")},
            path=("retailer_id",), query="PageQuery")},
        "/admin/v1/retailers/{retailer_id}/offers": {"get": operation(
            "adminListOffers", "A retailer's offers",
            {"200": json_answer("OfferList", "one page"), "404": error("no such retailer")},
            path=("retailer_id",), query="OffersPageQuery")},
    }
