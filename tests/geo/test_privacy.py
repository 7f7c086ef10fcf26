import pytest

from geo.privacy import truncate_ip


@pytest.mark.parametrize(
    ("ip", "stored"),
    [
        ("81.2.69.160", "81.2.69.0"),
        ("81.2.69.0", "81.2.69.0"),
        (" 10.1.2.3 ", "10.1.2.0"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::"),
        ("2a01:e0a:1:2:3:4:5:6", "2a01:e0a:1::"),
        ("::ffff:81.2.69.160", "81.2.69.0"),
        ("fe80::1%eth0", "fe80::"),
    ],
)
def test_ip_is_truncated_before_storage(ip: str, stored: str) -> None:
    assert truncate_ip(ip) == stored


@pytest.mark.parametrize("junk", ["", "not-an-ip", "81.2.69", "81.2.69.160/24", "1.2.3.4.5", "::g"])
def test_malformed_ip_gives_empty_string(junk: str) -> None:
    assert truncate_ip(junk) == ""
