import random

import pytest

from geo import postal
from geo.distance import great_circle_km
from geo.postal import country_at, lookup_postal_code


def test_paris_1st_is_in_central_paris() -> None:
    place = lookup_postal_code("75001", "FR")
    assert place is not None
    assert place.city == "Paris" and place.country == "FR" and place.postal_code == "75001"
    assert great_circle_km(place.lat, place.lon, 48.86, 2.34) < 3


def test_marseille_1st_is_in_marseille() -> None:
    place = lookup_postal_code("13001", "FR")
    assert place is not None
    assert place.city == "Marseille"
    assert great_circle_km(place.lat, place.lon, 43.2965, 5.3698) < 5


@pytest.mark.parametrize(("typed", "country"), [(" 75 001 ", "fr"), ("75001", " Fr "), ("F-75001", "FR")])
def test_spaces_case_and_prefix_are_tolerated(typed: str, country: str) -> None:
    assert lookup_postal_code(typed, country) == lookup_postal_code("75001", "FR")


@pytest.mark.parametrize(("code", "country", "city"), [("1000", "BE", "Bruxelles"), ("L-1661", "LU", "Luxembourg")])
def test_neighbour_countries_are_covered(code: str, country: str, city: str) -> None:
    place = lookup_postal_code(code, country)
    assert place is not None and place.city == city and place.country == country


def test_unknown_french_code_falls_back_to_its_department_and_keeps_the_code() -> None:
    # 13999 is no real code; it is still in the Bouches-du-Rhône.
    place = lookup_postal_code("13999", "FR")
    assert place is not None
    assert place.postal_code == "13999" and place.city is None and place.country == "FR"
    assert great_circle_km(place.lat, place.lon, 43.5, 5.2) < 50


@pytest.mark.parametrize(
    ("code", "country"),
    [("7500", "FR"), ("750011", "FR"), ("ABCDE", "FR"), ("", "FR"), ("75001", "US"), ("75001", ""), ("9999", "BE")],
)
def test_malformed_or_unknown_code_has_no_place(code: str, country: str) -> None:
    assert lookup_postal_code(code, country) is None


def test_non_string_input_has_no_place() -> None:
    assert lookup_postal_code(75001, "FR") is None  # type: ignore[arg-type]


def test_a_shared_position_tells_its_country() -> None:
    assert country_at(48.8566, 2.3522) == "FR"  # Paris
    assert country_at(50.8503, 4.3517) == "BE"  # Brussels
    assert country_at(46.2044, 6.1432) == "CH"  # Geneva
    assert country_at(40.4168, -3.7038) is None  # Madrid: no covered code within reach
    assert country_at(0.0, -160.0) is None  # the Pacific


def test_country_shortcut_gives_the_same_country_as_the_full_scan() -> None:
    # Whole sub-cells are settled at once; every position must still get what scanning the
    # centres around it gives: inland, near borders, on the coast, out at sea.
    rng = random.Random(9)
    points = [(rng.uniform(41.0, 51.5), rng.uniform(-5.5, 10.0)) for _ in range(40_000)]
    # Along the Franco-Belgian and Franco-Swiss borders, densely.
    points += [(rng.uniform(50.2, 50.9), rng.uniform(2.5, 4.5)) for _ in range(10_000)]
    points += [(rng.uniform(46.0, 46.6), rng.uniform(5.9, 6.9)) for _ in range(10_000)]
    for lat, lon in points:
        row, col = int(lat // postal._CELL_DEG), int(lon // postal._CELL_DEG)
        assert country_at(lat, lon) == postal._country_near(lat, lon, row, col), (lat, lon)
    # The shortcut must actually serve inland France, or it is only a slower scan.
    inland = [(rng.uniform(45.0, 48.5), rng.uniform(0.0, 4.5)) for _ in range(2_000)]
    settled = 0
    for lat, lon in inland:
        row, col = int(lat // postal._CELL_DEG), int(lon // postal._CELL_DEG)
        sub_row = min(max(int((lat - row * postal._CELL_DEG) // postal._SUB_DEG), 0), postal._SUBS - 1)
        sub_col = min(max(int((lon - col * postal._CELL_DEG) // postal._SUB_DEG), 0), postal._SUBS - 1)
        settled += postal._settled(row, col, sub_row, sub_col) is not None
    assert settled > 0.9 * len(inland), settled
