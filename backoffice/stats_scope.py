"""The statistics a role asks for: a query string read into `StatsFilters`, confined to what the role may see.

One reading for the dashboard (`/admin/`), its CSV export and `GET /admin/v1/stats`, so the
same query string shows the same figures in all three, and no caller can forget a scope: an
admin sees every campaign, a brand its own (another brand's campaign, existing or not, is
out of scope: 404 where it is asked, with no hint that it exists), a retailer only the rows
of its own retailer id (another retailer id is out of scope too).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

import asyncpg
import msgspec
from msgspec import Meta

from backoffice.stats import StatsFilters
from cache.gtin import GtinError, normalize_gtin
from edge_api.auth import Principal
from edge_api.errors import split_validation_error
from edge_api.schemas import Mode

# Statistics are kept 13 months; a wider window only costs a bigger scan.
MAX_STATS_DAYS = 400
DEFAULT_STATS_DAYS = 30
# Dates a period may touch: nearcart counted nothing before, and date arithmetic ends at year 9999.
EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)

CampaignList = Annotated[
    str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}(?:,[A-Za-z0-9][A-Za-z0-9_-]{0,63})*$",
              description="a campaign id, or several separated by commas")
]


class StatsQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`GET /admin/v1/stats` and the dashboard: a period (the last 30 days by default) and filters."""

    campaign: CampaignList | None = None
    from_: date | None = msgspec.field(default=None, name="from")
    to: date | None = None
    gtin: Annotated[str, Meta(max_length=14)] | None = None
    retailer: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    mode: Mode | None = None
    region: Annotated[str, Meta(pattern=r"^[A-Z]{2}(?:-[0-9AB]{2,3})?$", examples=["FR-75", "BE"])] | None = None
    format: Literal["json", "csv"] = "json"


class BadFilter(Exception):
    """A filter value that cannot be used: a 400 naming the parameter."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


class OutOfScope(BadFilter):
    """A campaign or retailer the role may not see: a 404, the same whether it exists or not."""


def read_query(params: Mapping[str, str], ignored: frozenset[str] = frozenset()) -> StatsQuery:
    """A form's query string as a `StatsQuery`: empty fields are filters not chosen, `ignored` keys are the page's."""
    chosen = {key: value for key, value in params.items() if value.strip() and key not in ignored}
    try:
        return msgspec.convert(chosen, StatsQuery, strict=False)
    except msgspec.ValidationError as exc:
        path, message = split_validation_error(exc)
        raise BadFilter(path[2:] if path.startswith("$.") else "query", message) from exc


async def scoped_filters(
    pool: asyncpg.Pool, who: Principal, query: StatsQuery, today: date | None = None
) -> StatsFilters:
    """The filters `who` asked for, within its scope; `BadFilter` (400) or `OutOfScope` (404) otherwise."""
    for name, day in (("from", query.from_), ("to", query.to)):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise BadFilter(name, f"{name} must be between {EARLIEST.isoformat()} and {LATEST.isoformat()}")
    to = query.to or today or datetime.now(UTC).date()
    since = query.from_ or max(EARLIEST, to - timedelta(days=DEFAULT_STATS_DAYS - 1))
    if since > to:
        raise BadFilter("from", "from is after to")
    if (to - since).days >= MAX_STATS_DAYS:
        raise BadFilter("from", f"at most {MAX_STATS_DAYS} days at once")
    gtin = None
    if query.gtin:
        try:
            gtin = normalize_gtin(query.gtin)
        except GtinError as exc:
            raise BadFilter("gtin", str(exc)) from exc
    asked = tuple(dict.fromkeys(query.campaign.split(","))) if query.campaign else None
    campaigns, retailer = asked, query.retailer
    if who.role == "brand":
        own = await brand_campaigns(pool, who.subject)
        foreign = [c for c in asked or () if c not in own]
        if foreign:
            raise OutOfScope("campaign", f"no campaign {foreign[0]!r}")
        campaigns = asked or own
    elif who.role == "retailer":
        if retailer is not None and not who.is_retailer(retailer):
            raise OutOfScope("retailer", f"no retailer {retailer!r}")
        retailer = who.subject
    return StatsFilters(since=since, to=to, campaigns=campaigns, gtin=gtin, retailer=retailer, mode=query.mode,
                        region=query.region)


async def brand_campaigns(pool: asyncpg.Pool, brand: str) -> tuple[str, ...]:
    return tuple(await pool.fetchval(
        "SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM campaigns WHERE brand = $1", brand
    ))
