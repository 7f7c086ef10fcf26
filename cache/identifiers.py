"""Every identifier clients, tokens and feeds name, spelled once, with one strict rule for all of them.

Here, below edge_api/, because feeds (cache/row_rules.py) check the same ids the API does.

Python's `$` also matches before a final newline, and msgspec checks `Meta(pattern=...)` with
`re.search`: `^demo$` let "demo\\n" through, to be stored, counted and echoed back. So every
pattern here is built by `whole()`, anchored `\\A...\\Z` (the whole string, nothing after it),
and compiled ones are used with `fullmatch`. `/openapi.json` (edge_api/openapi.py) shows the
same patterns in JSON Schema's ECMA-262 spelling, `^...$`, where `$` is the end of the string
(`ecma_pattern`).
"""

from __future__ import annotations

import re
from typing import Annotated

from msgspec import Meta

_WHOLE = re.compile(r"\\A\(\?:(?P<body>.*)\)\\Z", re.DOTALL)


def whole(body: str) -> str:
    """A pattern matching `body` as the whole string, for `re.search` (msgspec) as for `fullmatch`."""
    return rf"\A(?:{body})\Z"


def ecma_pattern(pattern: str) -> str:
    """A `whole()` pattern as JSON Schema writes it: `^(?:body)$`, which ECMA-262 reads as strictly."""
    found = _WHOLE.fullmatch(pattern)
    return f"^(?:{found.group('body')})$" if found else pattern


# --- the bodies: what one identifier may hold -----------------------------------------------------

CAMPAIGN_ID = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
# A brand is named like a campaign (its campaigns' `brand`, the `brand:<id>` role).
BRAND_ID = CAMPAIGN_ID
# Feeds also allow `.` and `:`; a JWT role cannot carry `:` (it ends the role's kind).
RETAILER_ID = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"
ROLE_RETAILER_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
ROLE = rf"admin|brand:(?P<brand>{BRAND_ID})|retailer:(?P<retailer>{ROLE_RETAILER_ID})"
# Any length a GTIN comes in (digits only; the check digit is cache.gtin's to check).
GTIN_INPUT = r"[0-9]{8}|[0-9]{12,14}"
COUNTRY = r"[A-Za-z]{2}"
POSTAL_CODE = r"[A-Za-z0-9 -]{1,12}"
MODE = r"in_store|click_collect|delivery"
MODE_LIST = rf"(?:{MODE})(?:,(?:{MODE}))*"
# A signed offer link's token: base64url payload "." base64url signature (edge_api/tokens.py checks the rest).
CLICK_TOKEN = r"[A-Za-z0-9_-]{2,1000}\.[A-Za-z0-9_-]{2,100}"

# --- compiled, for code that checks a string outside msgspec (always with fullmatch) -------------

ROLE_RE = re.compile(ROLE)
RETAILER_ID_RE = re.compile(RETAILER_ID)

# --- the types: what schemas (and so /openapi.json) use --------------------------------------------

Gtin = Annotated[
    str,
    Meta(pattern=whole(GTIN_INPUT), description="GTIN-8, -12, -13 or -14 (digits only)", examples=["3017620422003"]),
]
CampaignId = Annotated[str, Meta(pattern=whole(CAMPAIGN_ID), description="campaign id", examples=["demo"])]
BrandId = Annotated[str, Meta(pattern=whole(BRAND_ID), description="brand id", examples=["acme"])]
RetailerId = Annotated[str, Meta(pattern=whole(RETAILER_ID), description="retailer id", examples=["shop"])]
Country = Annotated[str, Meta(pattern=whole(COUNTRY), description="ISO 3166-1 alpha-2 code", examples=["FR"])]
PostalCode = Annotated[str, Meta(pattern=whole(POSTAL_CODE), description="postal code", examples=["75001"])]
ModeList = Annotated[str, Meta(pattern=whole(MODE_LIST), description="comma list of modes", examples=["delivery"])]
ClickToken = Annotated[str, Meta(pattern=whole(CLICK_TOKEN), max_length=1024, description="signed offer link token")]
