"""Great-circle distance computed exactly as Redis computes it for GEOSEARCH/GEODIST.

Redis decides which stores are inside `radius_km`; the API then prints a distance for
each. Using Redis's own formula and Earth radius means a store Redis found at 19.99 km
is never shown as 20.01 km.
"""

from __future__ import annotations

from math import asin, cos, radians, sin, sqrt

# Redis src/geohash_helper.c: EARTH_RADIUS_IN_METERS.
EARTH_RADIUS_KM: float = 6372797.560856 / 1000.0


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance in km; the formula of Redis's `geohashGetDistance`."""
    lat1r = radians(lat1)
    lat2r = radians(lat2)
    u = sin((lat2r - lat1r) / 2)
    v = sin(radians(lon2 - lon1) / 2)
    return 2.0 * EARTH_RADIUS_KM * asin(sqrt(u * u + cos(lat1r) * cos(lat2r) * v * v))
