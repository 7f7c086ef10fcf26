"""The shapes `/admin/v1/...` reads (query strings) and writes (answers), as msgspec Structs.

Beside `edge_api.schemas` (what shoppers' browsers and brands' pages exchange): these are
for brands', retailers' and admins' tools, behind a JWT.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

Limit = Annotated[int, Meta(ge=1, le=500)]
Cursor = Annotated[str, Meta(max_length=200)]


class PageQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    limit: Limit = 100
    after: Cursor | None = None


class OffersPageQuery(PageQuery, kw_only=True, forbid_unknown_fields=True):
    gtin: Annotated[str, Meta(max_length=14)] | None = None


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
