"""Pages for browsers: the widget's cache headers and encodings, the hosted product page, its QR code, the demo."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from edge_api import pages
from edge_api.settings import Settings

SCRIPT = b"(()=>{window.NearCart={}})();\n"
HASHED = "nearcart.0123456789ab.js"


@pytest.fixture
def client(tmp_path: Path, settings: Settings) -> TestClient:
    dist = tmp_path / "dist"
    dist.mkdir()
    for name in ("nearcart.js", HASHED):
        (dist / name).write_bytes(SCRIPT)
        (dist / (name + ".gz")).write_bytes(gzip.compress(SCRIPT))
    (dist / "manifest.json").write_text(f'{{"nearcart.js": {{"file": "{HASHED}"}}}}')
    widget_settings = msgspec.structs.replace(settings, widget_dir=str(dist), public_url="https://wtb.example")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {"settings": widget_settings}

    return TestClient(Starlette(routes=pages.routes, lifespan=lifespan))


def test_entry_script_is_cached_for_minutes_and_open_to_every_origin(client: TestClient) -> None:
    with client:
        response = client.get("/cdn/v1/nearcart.js", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.content == SCRIPT
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"].startswith("public, max-age=300")
    assert response.headers["access-control-allow-origin"] == "*"
    assert "content-encoding" not in response.headers


def test_hashed_script_is_immutable_for_a_year(client: TestClient) -> None:
    with client:
        response = client.get(f"/cdn/v1/{HASHED}")
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.content == SCRIPT


def test_script_goes_out_precompressed_when_gzip_is_accepted(client: TestClient) -> None:
    with client:
        response = client.get("/cdn/v1/nearcart.js", headers={"Accept-Encoding": "gzip, deflate"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.content == SCRIPT  # httpx decodes it: the bytes are the same script


def test_gzip_refused_with_q0_gets_plain_script(client: TestClient) -> None:
    with client:
        response = client.get("/cdn/v1/nearcart.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in response.headers


def test_unknown_widget_file_is_404_not_a_file_from_elsewhere(client: TestClient) -> None:
    with client:
        assert client.get("/cdn/v1/other.js").status_code == 404
        assert client.get("/cdn/v1/..%2Fsecret").status_code == 404
        assert client.get("/cdn/v1/nearcart.ffffffffffff.js").status_code == 404


def test_hosted_page_opens_the_widget_for_its_product_under_a_strict_csp(client: TestClient) -> None:
    with client:
        response = client.get("/p/demo/3017620422003")
    assert response.status_code == 200
    assert 'data-open="03017620422003"' in response.text
    assert 'data-campaign="demo"' in response.text
    assert 'src="/cdn/v1/nearcart.js"' in response.text
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_hosted_page_names_the_bad_part_of_its_address(client: TestClient) -> None:
    with client:
        bad_gtin = client.get("/p/demo/3017620422004")
        bad_campaign = client.get("/p/<script>/3017620422003")
    assert bad_gtin.status_code == 400 and bad_gtin.text.startswith("gtin:")
    assert "check digit" in bad_gtin.text
    assert bad_campaign.status_code == 400 and bad_campaign.text.startswith("campaign:")
    assert bad_campaign.headers["content-type"].startswith("text/plain")  # echoed input is never HTML


def test_qr_code_is_an_svg_pointing_at_the_public_page(client: TestClient) -> None:
    with client:
        response = client.get("/p/demo/3017620422003/qr.svg")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.text.startswith("<svg")
    assert "https://wtb.example/p/demo/03017620422003" in response.text  # segno writes the URL as the title


def test_demo_page_has_several_products_and_a_video_with_the_overlay(client: TestClient) -> None:
    with client:
        redirect = client.get("/demo", follow_redirects=False)
        page = client.get("/demo/")
        video = client.get("/demo/spread.webm")
    assert redirect.status_code == 308 and redirect.headers["location"] == "/demo/"
    assert page.text.count("<button class=\"buy\" data-nearcart-gtin=") >= 3
    assert "data-nearcart-from" in page.text and "data-nearcart-to" in page.text
    assert video.status_code == 200 and 1000 < len(video.content) < 20_000
