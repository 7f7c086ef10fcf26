"""What the load scripts ask for: products and positions drawn from the demo catalog and France's towns.

`load_data` samples the catalog once; `to_lua` writes it for wrk's script; `sample_queries` shapes a few
queries as that script does, for checking answers before a run.
"""

from __future__ import annotations

import asyncio
import json
import random

import asyncpg
import msgspec

from edge_api.settings import Settings
from geo.distance import great_circle_km
from geo.postal import postal_codes
from geo.towns import french_towns

HOT_PRODUCTS = 5
CITIES = 30
# A town's postal codes: those whose centroid lies this close to its centre.
CITY_RADIUS_KM = 8.0


async def _catalog_sample(settings: Settings) -> tuple[list[str], list[tuple[float, float]]]:
    """Products with offers, most offered first, and the positions of stores that have some."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        gtins = [r["gtin"] for r in await conn.fetch(
            "SELECT gtin, count(*) AS n FROM offers WHERE quantity > 0 GROUP BY gtin ORDER BY n DESC, gtin")]
        spots = [(r["lat"], r["lon"]) for r in await conn.fetch(
            "SELECT DISTINCT s.lat, s.lon FROM stores s JOIN offers o USING (retailer_id, store_id) "
            "WHERE o.quantity > 0 ORDER BY s.lat, s.lon")]
    finally:
        await conn.close()
    if not gtins or not spots:
        raise RuntimeError("the demo catalog has no in-stock store offer to ask for")
    return gtins, spots


class City(msgspec.Struct):
    lat: float
    lon: float
    population: int
    postal_codes: list[str]


class LoadData(msgspec.Struct):
    """What the wrk script draws its queries from (written for it as a Lua table)."""

    campaign: str
    gtins: list[str]
    spots: list[tuple[float, float]]
    hot: list[str]
    hot_cum: list[float]
    cities: list[City]
    city_cum: list[float]


def load_data(settings: Settings, campaign: str = "demo") -> LoadData:
    gtins, spots = asyncio.run(_catalog_sample(settings))
    codes = postal_codes("FR")
    cities = []
    for town in french_towns(15000)[:CITIES]:
        near = sorted(code for code, (lat, lon, _) in codes.items()
                      if great_circle_km(town.lat, town.lon, lat, lon) <= CITY_RADIUS_KM)
        cities.append(City(lat=town.lat, lon=town.lon, population=town.population, postal_codes=near))
    hot = gtins[:HOT_PRODUCTS]
    # Zipf-like: the second product draws half the shoppers of the first, the third a third...
    hot_weights = [1 / rank for rank in range(1, len(hot) + 1)]
    return LoadData(
        campaign=campaign,
        gtins=gtins,
        spots=random.Random(7).sample(spots, min(500, len(spots))),
        hot=hot,
        hot_cum=_cumulative(hot_weights),
        cities=cities,
        city_cum=_cumulative([float(c.population) for c in cities]),
    )


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def to_lua(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {to_lua(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(to_lua(v) for v in value) + "}"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def sample_queries(data: LoadData, mode: str, count: int = 6) -> list[dict[str, str]]:
    """A few queries shaped like the Lua script's, for checking answers."""
    rng = random.Random(11)
    queries = []
    for i in range(count):
        if mode == "unique":
            lat, lon = rng.choice(data.spots)
            queries.append({"gtin": data.gtins[i % len(data.gtins)], "campaign": data.campaign,
                            "lat": f"{lat:.6f}", "lon": f"{lon:.6f}"})
            continue
        city = data.cities[i % len(data.cities)]
        query = {"gtin": data.hot[i % len(data.hot)], "campaign": data.campaign}
        if i % 2 and city.postal_codes:
            query.update(postal_code=city.postal_codes[0], country="FR")
        else:
            query.update(lat=f"{city.lat:.2f}", lon=f"{city.lon:.2f}")
        queries.append(query)
    return queries
