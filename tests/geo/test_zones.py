import json
import random

import pytest

from geo.zones import DeliveryZones, geojson_error

# lon, lat as GeoJSON wants; a box around Paris, another around Lyon.
PARIS = {"type": "Polygon", "coordinates": [[[2.2, 48.8], [2.45, 48.8], [2.45, 48.92], [2.2, 48.92], [2.2, 48.8]]]}
LYON_RING = [[4.75, 45.7], [4.95, 45.7], [4.95, 45.82], [4.75, 45.82], [4.75, 45.7]]
PARIS_AND_LYON = {"type": "MultiPolygon", "coordinates": [PARIS["coordinates"], [LYON_RING]]}
LYON_FEATURES = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature", "properties": {"name": "Lyon"}, "geometry": {"type": "Polygon", "coordinates": [LYON_RING]}}
    ],
}
NOTRE_DAME = (48.853, 2.3499)
BELLECOUR = (45.7578, 4.832)
MARSEILLE = (43.2965, 5.3698)


def test_point_inside_polygon_is_delivered_and_outside_is_not() -> None:
    zones = DeliveryZones({"paris-only": PARIS})
    assert zones.delivers_to(*NOTRE_DAME) == {"paris-only"}
    assert zones.delivers_to(*MARSEILLE) == frozenset()
    assert zones.covers("paris-only", *NOTRE_DAME)
    assert not zones.covers("paris-only", *BELLECOUR)


def test_multipolygon_feature_collection_and_json_text_are_understood() -> None:
    zones = DeliveryZones({"two-cities": PARIS_AND_LYON, "lyon": LYON_FEATURES, "paris": json.dumps(PARIS)})
    assert zones.delivers_to(*NOTRE_DAME) == {"two-cities", "paris"}
    assert zones.delivers_to(*BELLECOUR) == {"two-cities", "lyon"}
    assert zones.delivers_to(*MARSEILLE) == frozenset()


def test_polygon_hole_is_not_delivered() -> None:
    hole = [[2.3, 48.84], [2.4, 48.84], [2.4, 48.88], [2.3, 48.88], [2.3, 48.84]]
    zones = DeliveryZones({"ring": {"type": "Polygon", "coordinates": [PARIS["coordinates"][0], hole]}})
    assert zones.delivers_to(*NOTRE_DAME) == frozenset()
    assert zones.delivers_to(48.81, 2.25) == {"ring"}


def test_retailer_without_zone_covers_nothing() -> None:
    zones = DeliveryZones({"paris": PARIS, "nationwide": None})
    assert "nationwide" not in zones
    assert not zones.covers("nationwide", *NOTRE_DAME)
    assert not zones.covers("unknown", *NOTRE_DAME)
    assert DeliveryZones({}).delivers_to(*NOTRE_DAME) == frozenset()


def test_non_finite_point_is_delivered_nowhere() -> None:
    zones = DeliveryZones({"paris": PARIS})
    assert zones.delivers_to(float("nan"), 2.35) == frozenset()
    assert not zones.covers("paris", 48.85, float("inf"))


@pytest.mark.parametrize(
    "good", [PARIS, PARIS_AND_LYON, LYON_FEATURES, LYON_FEATURES["features"][0], json.dumps(PARIS)]
)
def test_usable_geojson_has_no_error(good: object) -> None:
    assert geojson_error(good) is None


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"type": "Point", "coordinates": [2.35, 48.85]}, "Polygon or MultiPolygon"),
        ({"type": "Polygon", "coordinates": [[[2.2, 48.8], [2.4, 48.8], [2.2, 48.8]]]}, "at least 4 positions"),
        (
            {"type": "Polygon", "coordinates": [[[2.2, 48.8], [2.4, 48.8], [2.4, 48.9], [2.2, 48.9]]]},
            "end where it starts",
        ),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}, "Self-intersection"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, "x"], [0, 0]]]}, "coordinates[0][2]"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [1, 1], [0, 0]]]}, "out of range"),
        ({"type": "FeatureCollection", "features": []}, "features"),
        ({"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": None}]}, "features[0].geometry"),
        ("{not json", "not JSON"),
        ([1, 2], "GeoJSON object"),
        (None, "GeoJSON object"),
        ("[" * 100000 + "]" * 100000, "JSON"),
    ],
)
def test_bad_geojson_gets_a_message_saying_what_is_wrong(bad: object, message: str) -> None:
    error = geojson_error(bad)
    assert error is not None and message in error


def test_bad_zone_delivers_nowhere_and_says_why_without_breaking_the_others() -> None:
    zones = DeliveryZones({"paris": PARIS, "broken": {"type": "Point", "coordinates": [0, 0]}})
    assert zones.delivers_to(*NOTRE_DAME) == {"paris"}
    assert not zones.covers("broken", *NOTRE_DAME)
    assert "Polygon or MultiPolygon" in zones.errors["broken"]
    assert "paris" not in zones.errors


def test_many_zones_answer_like_a_few() -> None:
    """Past a handful of zones the STRtree path takes over; both must agree, edges included."""
    def square(west: float) -> dict[str, object]:
        ring = [[west, 45.0], [west + 1.5, 45.0], [west + 1.5, 46.0], [west, 46.0], [west, 45.0]]
        return {"type": "Polygon", "coordinates": [ring]}

    squares = {f"r{i}": square(i) for i in range(20)}
    many = DeliveryZones(squares)
    for i in range(20):
        few = DeliveryZones({key: squares[key] for key in list(squares)[max(0, i - 2): i + 1]})
        for lon in (i + 0.25, i + 1.0, i + 1.5):
            expected = {key for key in squares if few.covers(key, 45.5, lon)}
            assert few.delivers_to(45.5, lon) == expected
            assert expected <= many.delivers_to(45.5, lon)
    assert many.delivers_to(45.5, 1.2) == {"r0", "r1"}
    assert many.delivers_to(46.0, 3.0) == {"r2", "r3"}  # on the top edge of both
    assert many.delivers_to(47.0, 3.0) == frozenset()


def test_the_quick_outside_check_never_hides_a_zone() -> None:
    # Points the four-comparison check turns away must be points no zone holds, edges included.
    zones = DeliveryZones({"paris-only": PARIS, "both": PARIS_AND_LYON})
    rng = random.Random(4)
    points = [(rng.uniform(44.0, 50.0), rng.uniform(1.0, 6.0)) for _ in range(5_000)]
    points += [(48.8, 2.2), (48.92, 2.45), (45.7, 4.95), NOTRE_DAME, BELLECOUR]  # corners and insides
    inside = 0
    for lat, lon in points:
        if not zones.may_cover(lat, lon):
            assert zones.delivers_to(lat, lon) == frozenset(), (lat, lon)
        else:
            inside += bool(zones.delivers_to(lat, lon))
    assert inside > 5
    assert not DeliveryZones({}).may_cover(*NOTRE_DAME)
