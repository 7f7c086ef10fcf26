"""The CDN config in a real nginx (Debian package) in front of `nearcart serve`: the headers a browser gets."""

from __future__ import annotations

import contextlib
import gzip
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from widget_site import ROOT, Site

from cache.embedded import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def render(template: str, values: dict[str, str]) -> str:
    """envsubst with an explicit list: only ${NEARCART_*} is replaced, nginx's own $variables stay."""
    return re.sub(r"\$\{(NEARCART_[A-Z_]+)\}", lambda m: values[m.group(1)], template)


@pytest.fixture(scope="module")
def cdn(site: Site, widget_dist: Path) -> Iterator[str]:
    # Not under pytest's tmp (mode 0700): nginx workers run as another user and must reach their cache.
    with tempfile.TemporaryDirectory(prefix="nearcart-cdn-") as tmp:
        yield from _serve(Path(tmp), site, widget_dist)


def _serve(prefix: Path, site: Site, widget_dist: Path) -> Iterator[str]:
    for sub in ("temp", "cache", "logs"):
        (prefix / sub).mkdir()
    for path in (prefix, *prefix.iterdir()):
        path.chmod(0o777)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(
        render(
            (ROOT / "cdn" / "nginx.conf.template").read_text(),
            {
                "NEARCART_CDN_PORT": f"127.0.0.1:{port}",
                "NEARCART_API_UPSTREAM": site.api.removeprefix("http://"),
                "NEARCART_WIDGET_DIR": str(widget_dist),
            },
        )
    )
    command = [NGINX, "-p", str(prefix), "-c", str(conf), "-e", "stderr"]
    subprocess.run([*command, "-t", "-g", f"pid {prefix}/nginx.pid;"], check=True, capture_output=True)
    server = subprocess.Popen([*command, "-g", f"pid {prefix}/nginx.pid; daemon off;"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        time.sleep(0.05)  # polling a starting server
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=30)


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()


def test_entry_script_is_cached_minutes_and_sent_precompressed(cdn: str, widget_dist: Path) -> None:
    status, headers, body = get(cdn + "/cdn/v1/nearcart.js", **{"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["cache-control"] == "public, max-age=300, stale-while-revalidate=60"
    assert headers["content-encoding"] == "gzip"
    assert headers["vary"] == "Accept-Encoding"
    assert headers["access-control-allow-origin"] == "*"
    assert headers["content-type"].startswith("text/javascript")
    assert gzip.decompress(body) == (widget_dist / "nearcart.js").read_bytes()


def test_hashed_script_is_immutable_for_a_year(cdn: str, widget_dist: Path) -> None:
    hashed = next(p.name for p in widget_dist.glob("nearcart.*.js") if p.name != "nearcart.js")
    status, headers, body = get(f"{cdn}/cdn/v1/{hashed}")
    assert status == 200
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "content-encoding" not in headers  # no Accept-Encoding: the plain bytes the SRI hash covers
    assert body == (widget_dist / hashed).read_bytes()


def test_campaign_is_proxied_then_answered_from_the_cache(cdn: str, site: Site) -> None:
    first = get(f"{cdn}/v1/campaigns/{site.campaign}")
    second = get(f"{cdn}/v1/campaigns/{site.campaign}")
    assert first[0] == second[0] == 200
    assert first[1]["x-cache-status"] in ("MISS", "HIT")
    assert second[1]["x-cache-status"] == "HIT"
    assert second[2] == first[2] and b'"fallback_links"' in second[2]


def test_other_api_paths_pass_through_uncached(cdn: str) -> None:
    status, headers, _ = get(cdn + "/healthz")
    assert status == 200
    assert "x-cache-status" not in headers
