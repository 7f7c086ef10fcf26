from __future__ import annotations

import pytest

from cache.gtin import GtinError, check_digit, normalize_gtin


def test_ean13_is_stored_as_14_digits() -> None:
    assert normalize_gtin("3017620422003") == "03017620422003"


@pytest.mark.parametrize(
    ("code", "stored"),
    [
        ("96385074", "00000096385074"),  # GTIN-8
        ("036000291452", "00036000291452"),  # UPC-A, GTIN-12
        ("10036000291459", "10036000291459"),  # GTIN-14 case code
    ],
)
def test_every_gtin_length_is_accepted(code: str, stored: str) -> None:
    assert normalize_gtin(code) == stored


def test_surrounding_spaces_are_tolerated() -> None:
    assert normalize_gtin(" 3017620422003 ") == "03017620422003"


def test_wrong_check_digit_is_refused_with_the_digit_it_should_be() -> None:
    with pytest.raises(GtinError, match="check digit should be 3"):
        normalize_gtin("3017620422004")


@pytest.mark.parametrize(
    "code", ["301762042200", "30176204220031", "123", "301762042200X", "", "３０１７６２０４２２００３"]
)
def test_wrong_length_or_non_digits_are_refused(code: str) -> None:
    with pytest.raises(GtinError, match="is not a GTIN"):
        normalize_gtin(code)


def test_check_digit_matches_gs1_examples() -> None:
    assert check_digit("301762042200") == 3
    assert check_digit("9638507") == 4
