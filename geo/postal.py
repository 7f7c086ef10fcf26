"""Postal code -> coordinates, offline, from a small table shipped in `geo/data/`.

The table (`postal_codes.tsv.gz`, see `geo/data/README.md` and `geo/build_postal_data.py`)
is derived from MaxMind's GeoLite2-City data (CC BY-SA 4.0): for each (country, postal
code) the median position and most common city of the IP networks carrying that code.
It covers most French codes plus Belgium, Luxembourg and Switzerland.

A well-formed French code missing from the table (a small village, a CEDEX) falls back
to the centre of its department (first two digits, three for overseas `97x`; Corsica's
`20xxx` codes are one group): the shopper still gets nearby offers, and the returned
`Place` keeps the asked postal code but no city, since we do not know it.
"""

from __future__ import annotations

import functools
import gzip
import re
import statistics
from functools import cache
from pathlib import Path

from geo.distance import great_circle_km
from geo.place import Place

DATA_FILE = Path(__file__).parent / "data" / "postal_codes.tsv.gz"

# What a well-formed code looks like once spaces and a country prefix ("F-", "L-") are gone.
_FORMATS = {
    "FR": re.compile(r"\d{5}"),
    "BE": re.compile(r"\d{4}"),
    "LU": re.compile(r"\d{4}"),
    "CH": re.compile(r"\d{4}"),
}
# Overseas departments and Monaco use French postal codes; shoppers there may name their own ISO code.
_ALIASES = {"GP": "FR", "MQ": "FR", "GF": "FR", "RE": "FR", "YT": "FR", "PM": "FR", "BL": "FR", "MF": "FR", "MC": "FR"}
_PREFIX = re.compile(r"^(?:FR?|B|BE|L|LU|CH)-")


@cache
def _table() -> dict[tuple[str, str], tuple[float, float, str]]:
    table: dict[tuple[str, str], tuple[float, float, str]] = {}
    with gzip.open(DATA_FILE, "rt", encoding="utf-8") as lines:
        next(lines)  # header
        for line in lines:
            country, code, lat, lon, city, _networks = line.rstrip("\n").split("\t")
            table[(country, code)] = (float(lat), float(lon), city)
    return table


@cache
def _departments() -> dict[str, tuple[float, float]]:
    """Centre of each French department: the median of its known postal codes."""
    groups: dict[str, list[tuple[float, float]]] = {}
    for (country, code), (lat, lon, _city) in _table().items():
        if country == "FR":
            groups.setdefault(_department(code), []).append((lat, lon))
    return {
        dep: (statistics.median(p[0] for p in points), statistics.median(p[1] for p in points))
        for dep, points in groups.items()
    }


def _department(code: str) -> str:
    return code[:3] if code.startswith("97") else code[:2]


def normalize(postal_code: str, country: str) -> tuple[str, str] | None:
    """(country, code) in table form, or None when the code cannot be one of that country."""
    if not isinstance(postal_code, str) or not isinstance(country, str):
        return None
    country = country.strip().upper()
    country = _ALIASES.get(country, country)
    code = "".join(postal_code.split()).upper()
    code = _PREFIX.sub("", code)
    pattern = _FORMATS.get(country)
    if pattern is None or not pattern.fullmatch(code):
        return None
    return country, code


def lookup_postal_code(postal_code: str, country: str) -> Place | None:
    """Where a postal code is; None when the country is not covered or the code is unknown."""
    key = normalize(postal_code, country)
    if key is None:
        return None
    country, code = key
    found = _table().get(key)
    if found is not None:
        lat, lon, city = found
        return Place(lat=lat, lon=lon, postal_code=code, city=city or None, country=country)
    if country == "FR":
        centre = _departments().get(_department(code))
        if centre is not None:
            return Place(lat=centre[0], lon=centre[1], postal_code=code, city=None, country=country)
    return None


def postal_codes(country: str) -> dict[str, tuple[float, float, str]]:
    """Every known code of a country -> (lat, lon, city); for tools that place towns."""
    return {code: value for (c, code), value in _table().items() if c == country}


# A position within this distance of a known postal-code centre takes that code's country.
COUNTRY_REACH_KM = 20.0
_CELL_DEG = 0.25


@cache
def _grid() -> dict[tuple[int, int], list[tuple[float, float, str]]]:
    grid: dict[tuple[int, int], list[tuple[float, float, str]]] = {}
    for (country, _code), (lat, lon, _city) in _table().items():
        grid.setdefault((int(lat // _CELL_DEG), int(lon // _CELL_DEG)), []).append((lat, lon, country))
    return grid


@functools.lru_cache(maxsize=4096)
def _neighbourhood(row: int, col: int) -> tuple[tuple[list[tuple[float, float, str]], ...], frozenset[str]]:
    """The 3x3 cells around one, and the countries found in them."""
    grid = _grid()
    # Own cell first: inland, its first centre is usually within reach.
    cells = tuple(grid.get((row + dr, col + dc), []) for dr in (0, -1, 1) for dc in (0, -1, 1))
    return cells, frozenset(country for cell in cells for _, _, country in cell)


def country_at(lat: float, lon: float) -> str | None:
    """The country of the nearest known postal-code centre within `COUNTRY_REACH_KM`, else None.

    Good enough to decide who delivers to a shopper who shared a position: it needs no
    other data and no IP. Near a border with a country the table does not cover (Germany,
    Spain, Italy) it can answer the covered neighbour; far from any known code it says None.
    """
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    row, col = int(lat // _CELL_DEG), int(lon // _CELL_DEG)
    sub_row = min(max(int((lat - row * _CELL_DEG) // _SUB_DEG), 0), _SUBS - 1)
    sub_col = min(max(int((lon - col * _CELL_DEG) // _SUB_DEG), 0), _SUBS - 1)
    settled = _settled(row, col, sub_row, sub_col)
    if settled is not _UNSETTLED:
        return settled
    return _country_near(lat, lon, row, col)


# Most sub-cells have one answer for all their points: `_settled` finds it once, so a shopper's
# position costs a dict lookup instead of a scan of the centres around it (near a border, that
# scan is hundreds of distances).
_SUBS = 5
_SUB_DEG = _CELL_DEG / _SUBS
# Float slack on the sub-cell's bounds (km), far above rounding, far below any distance that matters.
_SLACK_KM = 0.01
_UNSETTLED = "?"


@functools.lru_cache(maxsize=65_536)
def _settled(row: int, col: int, sub_row: int, sub_col: int) -> str | None:
    """What `country_at` gives every point of this sub-cell, or `_UNSETTLED` if points may differ.

    A point lies within `half_diagonal` of the sub-cell's centre, so its distance to a country's
    nearest centre is that country's distance from the sub-cell's centre, give or take as much
    (triangle inequality): a country nearer by more than twice that wins everywhere.
    """
    cells, _ = _neighbourhood(row, col)
    south, west = row * _CELL_DEG + sub_row * _SUB_DEG, col * _CELL_DEG + sub_col * _SUB_DEG
    mid_lat, mid_lon = south + _SUB_DEG / 2, west + _SUB_DEG / 2
    slack = _SLACK_KM + max(great_circle_km(mid_lat, mid_lon, corner_lat, corner_lon)
                            for corner_lat in (south, south + _SUB_DEG) for corner_lon in (west, west + _SUB_DEG))
    nearest: dict[str, float] = {}
    for cell in cells:
        for c_lat, c_lon, country in cell:
            km = great_circle_km(mid_lat, mid_lon, c_lat, c_lon)
            if km < nearest.get(country, COUNTRY_REACH_KM + slack):
                nearest[country] = km
    if not nearest:
        return None  # no centre within reach of any point
    ranked = sorted(nearest.items(), key=lambda item: item[1])
    best, best_km = ranked[0]
    if best_km + slack < COUNTRY_REACH_KM and (len(ranked) == 1 or best_km + slack < ranked[1][1] - slack):
        return best
    return _UNSETTLED


def _country_near(lat: float, lon: float, row: int, col: int) -> str | None:
    """`country_at` the long way: the centres of the 3x3 cells around the position."""
    cells, countries = _neighbourhood(row, col)
    if len(countries) == 1:
        # Inland (the common case): any centre within reach settles it, no need for the nearest.
        for cell in cells:
            for c_lat, c_lon, country in cell:
                if great_circle_km(lat, lon, c_lat, c_lon) < COUNTRY_REACH_KM:
                    return country
        return None
    best, best_km = None, COUNTRY_REACH_KM
    for cell in cells:
        for c_lat, c_lon, country in cell:
            km = great_circle_km(lat, lon, c_lat, c_lon)
            if km < best_km:
                best, best_km = country, km
    return best
