from collections.abc import Iterator

import pytest

from geo.geoip import GeoIP, default_database


@pytest.fixture(scope="module")
def geoip() -> Iterator[GeoIP]:
    reader = GeoIP()
    yield reader
    reader.close()


def test_default_database_is_the_packaged_geolite2_city() -> None:
    assert default_database().endswith("GeoLite2-City.mmdb")


def test_public_ip_is_located_in_its_country(geoip: GeoIP) -> None:
    place = geoip.lookup("81.2.69.160")
    assert place is not None
    assert place.country == "GB"
    assert 49 < place.lat < 59 and -8 < place.lon < 2


def test_french_ip_gives_city_and_postal_code(geoip: GeoIP) -> None:
    place = geoip.lookup("82.64.0.1")
    assert place is not None
    assert place.country == "FR"
    assert place.city and place.postal_code and len(place.postal_code) == 5


def test_ipv4_mapped_ipv6_is_located_like_ipv4(geoip: GeoIP) -> None:
    assert geoip.lookup("::ffff:81.2.69.160") == geoip.lookup("81.2.69.160")


@pytest.mark.parametrize(
    "ip", ["10.0.0.1", "192.168.1.1", "127.0.0.1", "::1", "100.64.0.1", "fe80::1", "0.0.0.0", "not-an-ip", "", "1.2.3"]
)
def test_private_or_malformed_address_has_no_place(geoip: GeoIP, ip: str) -> None:
    assert geoip.lookup(ip) is None


def test_lookup_never_raises_on_odd_input(geoip: GeoIP) -> None:
    for junk in [None, 12, b"81.2.69.160", "81.2.69.160\x00", "ff" * 500]:
        assert geoip.lookup(junk) is None  # type: ignore[arg-type]


def test_closed_reader_answers_none() -> None:
    reader = GeoIP()
    reader.close()
    assert reader.lookup("81.2.69.160") is None


def test_explicit_database_path_is_used(tmp_path: object) -> None:
    with GeoIP(default_database()) as reader:
        assert reader.lookup("81.2.69.160") is not None


def test_missing_database_file_fails_at_startup_with_its_path() -> None:
    with pytest.raises(FileNotFoundError, match="nowhere.mmdb"):
        GeoIP("/nowhere.mmdb")
