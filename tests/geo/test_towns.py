from geo.distance import great_circle_km
from geo.postal import lookup_postal_code
from geo.towns import french_towns


def test_biggest_french_towns_come_first_with_their_postal_codes() -> None:
    towns = french_towns()
    assert [t.name for t in towns[:3]] == ["Paris", "Marseille", "Lyon"]
    assert towns[0].postal_code is not None and towns[0].postal_code.startswith("75")
    assert towns[1].postal_code is not None and towns[1].postal_code.startswith("13")


def test_towns_are_sorted_by_population_and_above_the_threshold() -> None:
    towns = french_towns(20000)
    populations = [t.population for t in towns]
    assert populations == sorted(populations, reverse=True)
    assert min(populations) >= 20000
    assert 300 < len(towns) < 600


def test_arrondissements_are_not_counted_as_towns() -> None:
    names = {t.name for t in french_towns()}
    assert "Paris" in names
    assert not any(name.startswith(("Paris ", "Lyon 0", "Marseille 0")) for name in names)


def test_towns_lie_in_metropolitan_france_and_their_postal_code_is_nearby() -> None:
    for town in french_towns():
        assert town.country == "FR"
        assert 41 < town.lat < 51.2 and -5.5 < town.lon < 9.7
        if town.postal_code is not None:
            place = lookup_postal_code(town.postal_code, "FR")
            assert place is not None
            assert great_circle_km(town.lat, town.lon, place.lat, place.lon) <= 15, town


def test_towns_are_the_same_on_every_call() -> None:
    assert french_towns(1000) == french_towns(1000)
