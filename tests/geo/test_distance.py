from typing import cast

import pytest
import redis.asyncio as aioredis

from cache.keys import Keys
from geo.distance import EARTH_RADIUS_KM, great_circle_km

Point = tuple[float, float]
PAIRS = [
    # Paris Notre-Dame -> Versailles, Paris -> Marseille, Lille -> Perpignan, two shops 300 m apart.
    ((48.8530, 2.3499), (48.8049, 2.1204)),
    ((48.8566, 2.3522), (43.2965, 5.3698)),
    ((50.6292, 3.0573), (42.6887, 2.8948)),
    ((45.7640, 4.8357), (45.7665, 4.8380)),
]


async def _geoadd(redis: aioredis.Redis, keys: Keys, a: Point, b: Point) -> str:
    key = keys.prefix + "geo-test"
    await redis.geoadd(key, [a[1], a[0], "a", b[1], b[0], "b"])
    return key


@pytest.mark.parametrize(("a", "b"), PAIRS[:3])
async def test_distance_matches_redis_geodist(redis: aioredis.Redis, keys: Keys, a: Point, b: Point) -> None:
    key = await _geoadd(redis, keys, a, b)
    redis_km = await redis.geodist(key, "a", "b", unit="km")
    assert redis_km is not None
    assert great_circle_km(a[0], a[1], b[0], b[1]) == pytest.approx(redis_km, rel=1e-4)


@pytest.mark.parametrize(("a", "b"), PAIRS)
async def test_distance_between_stored_points_is_exactly_redis_geodist(
    redis: aioredis.Redis, keys: Keys, a: Point, b: Point
) -> None:
    # Redis stores positions as 52-bit geohashes (~0.6 m); on the positions it really holds,
    # the formulas must agree to GEODIST's printed precision (0.1 mm), even 300 m apart.
    key = await _geoadd(redis, keys, a, b)
    positions = cast(list[tuple[float, float]], await redis.geopos(key, "a", "b"))
    (lon1, lat1), (lon2, lat2) = positions[0], positions[1]
    redis_m = await redis.geodist(key, "a", "b", unit="m")
    assert redis_m is not None
    assert great_circle_km(lat1, lon1, lat2, lon2) * 1000 == pytest.approx(redis_m, abs=1e-3)


def test_paris_to_marseille_is_about_660_km() -> None:
    assert 655 < great_circle_km(48.8566, 2.3522, 43.2965, 5.3698) < 665


def test_distance_is_symmetric_and_zero_at_the_same_point() -> None:
    assert great_circle_km(48.85, 2.35, 45.76, 4.83) == pytest.approx(great_circle_km(45.76, 4.83, 48.85, 2.35))
    assert great_circle_km(48.85, 2.35, 48.85, 2.35) == 0.0


def test_earth_radius_is_the_one_redis_uses() -> None:
    assert EARTH_RADIUS_KM == pytest.approx(6372.797560856)
