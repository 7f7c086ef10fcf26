"""Every shape the edge API reads or writes, as msgspec Structs.

One definition, three uses: the same types decode requests (their error path,
e.g. `$[3].type`, goes into the 400), encode answers, and feed `/openapi.json`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from cache.identifiers import RETAILER_ID, BrandId, CampaignId, Country, Gtin, ModeList, PostalCode, whole

# --- shared pieces ---------------------------------------------------------------------------
# Identifiers (GTIN, campaign, country, ...) are defined once in cache/identifiers.py, with the
# one strict pattern rule; every other pattern here goes through its `whole()` too.

Mode = Literal["in_store", "click_collect", "delivery"]


class ErrorDetail(msgspec.Struct, kw_only=True):
    code: str
    parameter: str
    message: str


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every 4xx/5xx JSON answer: which parameter was wrong and why."""

    error: ErrorDetail


# --- /v1/offers ------------------------------------------------------------------------------
# Answer structs hold only strings, numbers and each other (no cycles): `gc=False` keeps the
# thousands built per second, and those kept in caches, out of the garbage collector's scans.


class OffersQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Query string of `GET /v1/offers`; decode with `msgspec.convert(dict(params), OffersQuery, strict=False)`."""

    gtin: Gtin
    campaign: CampaignId | None = None
    lat: Annotated[float, Meta(ge=-90, le=90)] | None = None
    lon: Annotated[float, Meta(ge=-180, le=180)] | None = None
    postal_code: PostalCode | None = None
    country: Country | None = None
    radius_km: Annotated[float, Meta(gt=0, le=100)] = 20.0
    limit: Annotated[int, Meta(ge=1, le=50)] = 20
    modes: ModeList | None = None

    @property
    def mode_list(self) -> tuple[str, ...]:
        """The asked modes, all three when none was given."""
        if not self.modes:
            return ("in_store", "click_collect", "delivery")
        return tuple(dict.fromkeys(self.modes.split(",")))


class Location(msgspec.Struct, kw_only=True, gc=False):
    lat: float | None = None
    lon: float | None = None
    source: Literal["query", "postal_code", "ip", "none"]
    postal_code: str | None = None
    city: str | None = None
    country: str | None = None


class RetailerRef(msgspec.Struct, kw_only=True, gc=False):
    id: str
    name: str
    logo_url: str


# omit_defaults: `approximate` shows only when true (an extension SPEC allows); the other fields have no default.
class StoreRef(msgspec.Struct, kw_only=True, gc=False, omit_defaults=True):
    id: str
    name: str
    address: str
    postal_code: str
    city: str
    lat: float
    lon: float
    # Placed at its postal code's centre: the distance is approximate. Before distance_km, which
    # edge_api/offer_json.py cuts off the encoded store.
    approximate: bool = False
    distance_km: float


class Price(msgspec.Struct, kw_only=True, gc=False):
    amount: Annotated[str, Meta(pattern=whole(r"[0-9]+\.[0-9]{2}"), examples=["2.99"])]
    currency: Annotated[str, Meta(pattern=whole(r"[A-Z]{3}"), examples=["EUR"])]


# omit_defaults: `unconfirmed` shows only when true (as `StoreRef.approximate`); the other fields have no default.
class Offer(msgspec.Struct, kw_only=True, gc=False, omit_defaults=True):
    retailer: RetailerRef
    mode: Mode
    store: StoreRef | None
    price: Price
    availability: Literal["in_stock", "low_stock"]
    # Its feed has not confirmed it for longer than the threshold (48 h by default) and its retailer
    # shows such offers rather than hiding them. Before `url`, which edge_api/offer_json.py appends.
    unconfirmed: Annotated[bool, Meta(description=(
        "Sent (true) only when the retailer's feed has not confirmed this offer for longer than the"
        " data-quality threshold (48 h by default): its stock may be out of date."))] = False
    url: str


class OffersAnswer(msgspec.Struct, kw_only=True, gc=False):
    gtin: str
    location: Location
    offers: list[Offer]


# --- /v1/events ------------------------------------------------------------------------------

MAX_EVENTS = 50
MAX_EVENTS_BYTES = 16 * 1024


class Shown(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """How many offers of one retailer in one mode a search showed: `["shop", "in_store", 3]`."""

    retailer: Annotated[str, Meta(min_length=1, max_length=64)]
    mode: Mode
    count: Annotated[int, Meta(ge=1, le=50)]


class Event(msgspec.Struct, kw_only=True):
    """One widget beacon. `ts` is the client's clock in epoch milliseconds (`Date.now()`).

    `impression` (a buy button shown: a widget load), `open`, `search` (an answer shown, with
    what it showed in `shown`; empty: a search without offers), `error`. `offers_shown` and
    `click` are what widgets before `search` sent: accepted, not counted (the server counts
    clicks itself, as they pass through `/v1/go`).
    """

    type: Literal["impression", "open", "search", "offers_shown", "click", "error"]
    campaign: CampaignId
    gtin: Gtin
    ts: Annotated[float, Meta(ge=0, le=1e14)]
    # The widget sends "" when a link names no retailer.
    retailer: Annotated[str, Meta(pattern=whole(f"(?:{RETAILER_ID})?"))] | None = None
    mode: Mode | None = None
    message: Annotated[str, Meta(max_length=500)] | None = None
    shown: Annotated[list[Shown], Meta(max_length=50)] | None = None


Events = Annotated[list[Event], Meta(min_length=1, max_length=MAX_EVENTS)]


# --- campaigns -------------------------------------------------------------------------------

HttpsUrl = Annotated[str, Meta(pattern=whole(r"https://[^\s/?#]+[^\s]*"), max_length=2048)]
Origin = Annotated[str, Meta(pattern=whole(r"(?:\*|https?://[^\s/?#]+)"), description="scheme://host[:port], or *")]


class Product(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    gtin: Gtin
    label: Annotated[str, Meta(min_length=1, max_length=200)]
    image_url: HttpsUrl | None = None


class RetailerRules(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    include: list[Annotated[str, Meta(min_length=1, max_length=64)]] = []
    exclude: list[Annotated[str, Meta(min_length=1, max_length=64)]] = []
    # Retailer ids shown first, in this order.
    priority: list[Annotated[str, Meta(min_length=1, max_length=64)]] = []


class Theme(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    primary_color: Annotated[str, Meta(pattern=whole(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})"))] = "#0a7d4f"
    font_family: Annotated[str, Meta(max_length=200, pattern=whole(r"[A-Za-z0-9 ,'\"-]*"))] = "system-ui, sans-serif"
    border_radius: Annotated[int, Meta(ge=0, le=48)] = 8


class FallbackLink(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    label: Annotated[str, Meta(min_length=1, max_length=100)]
    url: HttpsUrl


Tracking = dict[
    Annotated[str, Meta(pattern=whole(r"utm_[a-z_]{1,30}"))],
    Annotated[str, Meta(min_length=1, max_length=200)],
]


class Campaign(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A campaign JSON as a marketer writes it (`nearcart campaign validate|push FILE`)."""

    id: CampaignId
    brand: BrandId
    locale: Annotated[str, Meta(pattern=whole(r"[a-z]{2}(?:-[A-Z]{2})?"), examples=["fr", "en"])]
    products: Annotated[list[Product], Meta(min_length=1, max_length=1000)]
    modes: list[Mode] = msgspec.field(default_factory=lambda: ["in_store", "click_collect", "delivery"])
    radius_km: Annotated[float, Meta(gt=0, le=100)] = 20.0
    retailers: RetailerRules = msgspec.field(default_factory=RetailerRules)
    theme: Theme = msgspec.field(default_factory=Theme)
    allowed_origins: list[Origin] = []
    tracking: Tracking = {}
    fallback_links: list[FallbackLink] = []


class CampaignPublic(msgspec.Struct, kw_only=True):
    """What `GET /v1/campaigns/{id}` shows a browser: no tracking, no origin list."""

    id: str
    brand: str
    locale: str
    products: list[Product]
    modes: list[Mode]
    radius_km: float
    retailers: RetailerRules
    theme: Theme
    fallback_links: list[FallbackLink]


def public_part(campaign: Campaign) -> CampaignPublic:
    return CampaignPublic(
        id=campaign.id,
        brand=campaign.brand,
        locale=campaign.locale,
        products=campaign.products,
        modes=campaign.modes,
        radius_km=campaign.radius_km,
        retailers=campaign.retailers,
        theme=campaign.theme,
        fallback_links=campaign.fallback_links,
    )


# --- health ----------------------------------------------------------------------------------


class Health(msgspec.Struct, kw_only=True):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}


encoder = msgspec.json.Encoder()
