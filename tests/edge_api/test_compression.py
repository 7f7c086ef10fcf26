"""Offers answers kept gzip-compressed: browsers get the small bytes, other clients the same JSON."""

from __future__ import annotations

import gzip

import pytest

from edge_api.compression import accepts_gzip, gunzip_body, gzip_body


@pytest.mark.parametrize(("header", "expected"), [
    (b"gzip, deflate, br, zstd", True),  # Chromium
    (b"GZip", True),
    (b"x-gzip", True),
    (b"*", True),
    (b"br;q=1.0, gzip;q=0.8, *;q=0.1", True),
    (b"", False),
    (b"identity", False),
    (b"br, zstd", False),
    (b"gzip;q=0", False),
    (b"gzip;q=0.000, *", False),  # refused by name, whatever the wildcard says
    (b"*;q=0", False),
    (b"gzip;q=oops", False),
])
def test_accept_encoding_is_read_as_rfc_9110_says(header: bytes, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_the_stream_is_plain_gzip() -> None:
    body = b'{"offers":[' + b'{"retailer":"x"},' * 500 + b"]}"
    assert gzip.decompress(gzip_body(body)) == body == gunzip_body(gzip_body(body))
