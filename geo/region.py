"""The coarsest place statistics keep: a French département, or a country elsewhere (SPEC "Statistics").

`FR-75`, `FR-2A` (Corse-du-Sud), `FR-971` (Guadeloupe): ISO 3166-2 style codes derived from the
postal code; `BE`, `DE`...: the country alone; "" when nothing is known. Never finer.
"""

from __future__ import annotations

import re

from geo.place import Place

_FRENCH_POSTAL_CODE = re.compile(r"[0-9]{5}")
_COUNTRY = re.compile(r"[A-Z]{2}")
# Corsica's postal codes start with 20: 200xx-201xx are Corse-du-Sud, the rest Haute-Corse.
_CORSE_DU_SUD_BELOW = 20200


def departement(postal_code: str) -> str | None:
    """The département of a French postal code ("75011" -> "75"), None when it is not one."""
    code = postal_code.strip()
    if not _FRENCH_POSTAL_CODE.fullmatch(code):
        return None
    if code.startswith("20"):
        return "2A" if int(code) < _CORSE_DU_SUD_BELOW else "2B"
    if code.startswith(("97", "98")):
        return code[:3]  # overseas: 971 Guadeloupe ... 976 Mayotte, 98x collectivities
    return code[:2]


def region_of(place: Place | None) -> str:
    """`FR-<département>` for a French place with a postal code, else its country, else ""."""
    if place is None or not place.country or not _COUNTRY.fullmatch(place.country.upper()):
        return ""
    country = place.country.upper()
    if country == "FR" and place.postal_code:
        found = departement(place.postal_code)
        if found:
            return f"FR-{found}"
    return country
