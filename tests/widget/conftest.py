"""A real nearcart for the browser tests: its own PostgreSQL database and Redis prefix, a small catalog loaded
through the retailers' ingest path, `nearcart serve` in a subprocess, a brand's pages on another origin, Chromium.
"""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import msgspec
import pytest
import redis.asyncio as aioredis
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright
from widget_site import GTIN, PAGES, SHOPPER_IP, WIDGET, Site, run_async

from cache import db as catalog_db
from cache.embedded import free_port
from cache.index import build_index
from cache.ingest import ingest_files
from cache.keys import Keys
from edge_api.campaign_store import store_campaign
from edge_api.schemas import Campaign
from loadtest.stack import scratch_settings, serve_nearcart

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

RETAILERS = """retailer_id,name,logo_url,cart_url_template,delivery_countries
shop,ShopNet,,https://www.shop.example/cart?ean={gtin}&store={store_id}&qty={qty},FR
hyper,HyperMarché,,https://www.hyper.example/panier/{gtin}?magasin={store_id}&q={qty},
"""
STORES = """retailer_id,store_id,name,address,postal_code,city,country,lat,lon
hyper,bastille,Hyper Bastille,1 rue de la Roquette,75011,Paris,FR,48.853,2.369
hyper,italie,Hyper Italie,30 avenue d'Italie,75013,Paris,FR,48.8315,2.3556
hyper,lyon,Hyper Bellecour,2 place Bellecour,69002,Lyon,FR,45.7578,4.8320
shop,montparnasse,ShopNet Montparnasse,5 rue du Départ,75015,Paris,FR,48.842,2.321
"""
OFFERS = """retailer_id,store_id,gtin,price,currency,quantity,modes,updated_at
shop,,3017620422003,3.49,EUR,100,delivery,2025-01-01T08:00:00+00:00
hyper,bastille,3017620422003,2.99,EUR,2,in_store|click_collect,2025-01-01T08:00:00+00:00
hyper,italie,3017620422003,2.89,EUR,40,in_store,2025-01-01T08:00:00+00:00
hyper,lyon,3017620422003,2.79,EUR,10,in_store,2025-01-01T08:00:00+00:00
shop,montparnasse,3017620422003,3.19,EUR,0,in_store,2025-01-01T08:00:00+00:00
"""


@pytest.fixture(scope="session")
def widget_dist() -> Path:
    """The widget as `npm run build` makes it (what the README's test command does first)."""
    if not (WIDGET / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=WIDGET, check=True)
    subprocess.run(["npm", "run", "build", "--silent"], cwd=WIDGET, check=True)
    return WIDGET / "dist"


def _campaign(brand_origin: str) -> Campaign:
    return msgspec.convert(
        {
            "id": "e2e",
            "brand": "cacao",
            "locale": "fr",
            "products": [{"gtin": GTIN, "label": "Pâte à tartiner 400 g"}],
            "theme": {"primary_color": "#7a3e1d", "border_radius": 4},
            "allowed_origins": [brand_origin],
            "tracking": {"utm_source": "nearcart"},
            "fallback_links": [{"label": "ShopNet en ligne", "url": "https://www.shop.example/p/nutella"}],
        },
        Campaign,
    )


async def _load_catalog(database_url: str, redis_url: str, keys: Keys, feeds: Path, brand_origin: str) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    conn = await asyncpg.connect(database_url)
    try:
        await catalog_db.migrate(conn)
        for kind, text in (("retailers", RETAILERS), ("stores", STORES), ("offers", OFFERS)):
            path = feeds / f"{kind}.csv"
            path.write_text(text, encoding="utf-8")
            report = await ingest_files(conn, redis, keys, kind, [path])
            assert not report.rejects, report.rejects
        await build_index(conn, redis, keys, grace_s=0)
        await store_campaign(conn, _campaign(brand_origin), 2.0)
    finally:
        await conn.close()
        await redis.aclose()


class _BrandPages(http.server.SimpleHTTPRequestHandler):
    """The brand's site: fixture pages with the API's address filled in, and a strict CSP on csp.html."""

    api = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        name = self.path.split("?")[0].lstrip("/") or "basic.html"
        path = PAGES / name
        if "/" in name or not path.is_file():
            self.send_error(404)
            return
        body = path.read_text(encoding="utf-8").replace("{{API}}", self.api).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if name.startswith("csp"):
            self.send_header(
                "Content-Security-Policy",
                f"default-src 'none'; script-src {self.api}; connect-src {self.api}; style-src 'self'; "
                f"img-src {self.api}; media-src {self.api}",
            )
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep test output quiet
        pass


@pytest.fixture(scope="session")
def site(services: tuple[str, str], widget_dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    api_port, brand_port = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    # localhost vs 127.0.0.1: another origin for the browser, the same machine for us.
    brand = f"http://localhost:{brand_port}"
    with scratch_settings(services, secret="widget-test-secret", widget_dir=str(widget_dist),
                          trusted_proxies=("127.0.0.1/32",)) as settings:
        run_async(_load_catalog(settings.database_url, settings.redis_url, Keys(settings.redis_prefix),
                                tmp_path_factory.mktemp("feeds"), brand))
        _BrandPages.api = api
        brand_server = http.server.ThreadingHTTPServer(("127.0.0.1", brand_port), _BrandPages)
        threading.Thread(target=brand_server.serve_forever, daemon=True).start()
        try:
            with serve_nearcart(settings, port=api_port):
                yield Site(api=api, brand=brand, campaign="e2e", settings=settings)
        finally:
            brand_server.shutdown()


BASKET = "<!doctype html><html lang='fr'><title>Panier</title><h1>Votre panier</h1></html>"


class _Basket(http.server.BaseHTTPRequestHandler):
    """Every retailer's basket page: the shopper lands here after the real 302 from /v1/go."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = BASKET.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep test output quiet
        pass


@pytest.fixture(scope="session")
def retailer_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A local HTTPS server standing in for www.shop.example and www.hyper.example (self-signed certificate)."""
    tmp = tmp_path_factory.mktemp("retailer")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=www.shop.example",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Basket)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


# Module scope: sync Playwright keeps an event loop running in this thread, which later modules' asyncio.run
# (the root conftest's fixtures) would trip over.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright, retailer_port: int) -> Iterator[Browser]:
    # The retailers' hosts resolve to the local basket server; nothing leaves the machine.
    rules = ",".join(f"MAP www.{name}.example:443 127.0.0.1:{retailer_port}" for name in ("shop", "hyper"))
    browser = playwright.chromium.launch(
        executable_path="/usr/bin/chromium", args=[*CHROMIUM_ARGS, f"--host-resolver-rules={rules}"]
    )
    yield browser
    browser.close()


@pytest.fixture
def context(site: Site, browser: Browser) -> Iterator[BrowserContext]:
    """A fresh shopper in Paris (the CDN in front says so); the retailers' certificate is our self-signed one."""
    context = browser.new_context(
        extra_http_headers={"X-Forwarded-For": SHOPPER_IP}, locale="fr-FR", ignore_https_errors=True
    )
    # 2-core shared machines are slow: be generous, never sleep.
    context.set_default_timeout(20_000)
    yield context
    context.close()
