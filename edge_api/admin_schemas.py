"""The shapes `/admin/v1/...` reads (query strings) and writes (answers), as msgspec Structs.

Beside `edge_api.schemas` (what shoppers' browsers and brands' pages exchange): these are
for brands', retailers' and admins' tools, behind a JWT.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from edge_api.schemas import Mode

Limit = Annotated[int, Meta(ge=1, le=500)]
Cursor = Annotated[str, Meta(max_length=200)]


class PageQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    limit: Limit = 100
    after: Cursor | None = None


class OffersPageQuery(PageQuery, kw_only=True, forbid_unknown_fields=True):
    gtin: Annotated[str, Meta(max_length=14)] | None = None


CampaignIds = Annotated[
    str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}(?:,[A-Za-z0-9][A-Za-z0-9_-]{0,63})*$",
              description="a campaign id, or several separated by commas")
]


class StatsQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`GET /admin/v1/stats`: a period (the last 30 days by default) and filters."""

    campaign: CampaignIds | None = None
    from_: date | None = msgspec.field(default=None, name="from")
    to: date | None = None
    gtin: Annotated[str, Meta(max_length=14)] | None = None
    retailer: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    mode: Mode | None = None
    region: Annotated[str, Meta(pattern=r"^[A-Z]{2}(?:-[0-9AB]{2,3})?$", examples=["FR-75", "BE"])] | None = None
    format: Literal["json", "csv"] = "json"


class CampaignSummary(msgspec.Struct, kw_only=True):
    id: str
    brand: str
    etag: str
    updated_at: datetime


class CampaignList(msgspec.Struct, kw_only=True):
    campaigns: list[CampaignSummary]
    next: str | None


class CampaignSaved(msgspec.Struct, kw_only=True):
    id: str
    brand: str
    etag: str
    created: bool


class AdminStore(msgspec.Struct, kw_only=True):
    id: str
    name: str
    address: str
    postal_code: str
    city: str
    country: str
    lat: float
    lon: float
    updated_at: datetime


class StoreList(msgspec.Struct, kw_only=True):
    retailer_id: str
    stores: list[AdminStore]
    next: str | None


class AdminOffer(msgspec.Struct, kw_only=True):
    gtin: str
    store_id: str  # empty: an online (delivery) offer
    price: str
    currency: str
    quantity: int
    modes: list[str]
    updated_at: datetime


class OfferList(msgspec.Struct, kw_only=True):
    retailer_id: str
    offers: list[AdminOffer]
    next: str | None
