"""Pages served to browsers: the widget as the CDN's origin, hosted product pages with their QR code, the demo.

`/cdn/v1/nearcart.js` is the entry file brands paste (short cache: a new build reaches
pages within minutes); `/cdn/v1/nearcart.<hash>.js` never changes (cached a year,
pinnable with SRI). Both go out precompressed when the browser accepts it.
"""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

import msgspec
import segno
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from cache.gtin import GtinError, normalize_gtin
from cache.identifiers import CampaignId, Gtin
from edge_api.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
STATIC = Path(__file__).resolve().parent / "static"
WIDGET_FILE = re.compile(r"nearcart(?:\.[0-9a-f]{12})?\.js|manifest\.json")
HASHED_CACHE = "public, max-age=31536000, immutable"
# Minutes: a new build reaches every page soon, and the CDN absorbs the traffic meanwhile.
ENTRY_CACHE = "public, max-age=300, stale-while-revalidate=60"
# The hosted pages practise what the widget promises: it works under this policy.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' https: data:; "
    "media-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))


def _settings(request: Request) -> Settings | None:
    # None when the routes run without the app's lifespan (a bare test app): defaults apply.
    return getattr(request.state, "settings", None)


def widget_dir(settings: Settings | None) -> Path:
    if settings is not None and settings.widget_dir:
        return Path(settings.widget_dir)
    return ROOT / "widget" / "dist"


def _accepted(accept_encoding: str) -> set[str]:
    accepted = set()
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        if params.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            continue
        accepted.add(name.strip())
    return accepted


async def widget_file(request: Request) -> Response:
    name = request.path_params["name"]
    if not WIDGET_FILE.fullmatch(name):
        return PlainTextResponse(f"no widget file {name!r}", status_code=404)
    path = widget_dir(_settings(request)) / name
    if not path.is_file():
        return PlainTextResponse(
            f"{name} is not built: run `cd widget && npm ci && npm run build`", status_code=404
        )
    if name == "manifest.json":
        return FileResponse(path, media_type="application/json", headers={"Cache-Control": "public, max-age=60"})
    headers = {
        "Cache-Control": ENTRY_CACHE if name == "nearcart.js" else HASHED_CACHE,
        # Any brand page may load it, and `integrity` checks need a CORS response.
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept-Encoding",
    }
    accepted = _accepted(request.headers.get("accept-encoding", ""))
    for encoding, suffix in ENCODINGS:
        compressed = path.with_name(name + suffix)
        if encoding in accepted and compressed.is_file():
            headers["Content-Encoding"] = encoding
            path = compressed
            break
    return FileResponse(path, media_type="text/javascript; charset=utf-8", headers=headers)


def _product(request: Request) -> tuple[str, str] | Response:
    """(campaign id, 14-digit GTIN) from the path, or the 400 that says which part is wrong."""
    campaign = request.path_params["campaign"]
    try:
        msgspec.convert(campaign, CampaignId)
    except msgspec.ValidationError:
        return PlainTextResponse(f"campaign: {campaign[:80]!r} is not a campaign id", status_code=400)
    try:
        gtin = normalize_gtin(msgspec.convert(request.path_params["gtin"], Gtin))
    except msgspec.ValidationError as exc:
        return PlainTextResponse(f"gtin: {exc}", status_code=400)
    except GtinError as exc:
        return PlainTextResponse(f"gtin: {exc}", status_code=400)
    return campaign, gtin


def _public_base(request: Request) -> str:
    settings = _settings(request)
    if settings is not None and settings.public_url:
        return settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


async def product_page(request: Request) -> Response:
    found = _product(request)
    if isinstance(found, Response):
        return found
    campaign, gtin = found
    label, locale = "", "fr"
    store = getattr(request.state, "campaigns", None)
    if store is not None:
        try:
            stored = await store.get(campaign)
        except Exception:  # the page still works without the label: the widget reads the campaign itself
            stored = None
        if stored is not None:
            locale = stored.campaign.locale[:2]
            label = next((p.label for p in stored.campaign.products if normalize_gtin(p.gtin) == gtin), "")
    title = label or gtin.lstrip("0")
    buy = "Où acheter" if locale == "fr" else "Where to buy"
    body = f"""<!doctype html>
<html lang="{html.escape(locale)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} — {buy}</title>
<link rel="stylesheet" href="/demo/page.css">
</head>
<body>
<main>
<h1>{html.escape(title)}</h1>
<p><button class="buy" data-nearcart-gtin="{gtin}">{buy}</button></p>
</main>
<script async src="/cdn/v1/nearcart.js" data-campaign="{html.escape(campaign)}" data-open="{gtin}"></script>
</body>
</html>
"""
    headers = {
        "Content-Security-Policy": PAGE_CSP,
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "public, max-age=300",
    }
    return HTMLResponse(body, headers=headers)


async def product_qr(request: Request) -> Response:
    found = _product(request)
    if isinstance(found, Response):
        return found
    campaign, gtin = found
    url = f"{_public_base(request)}/p/{campaign}/{gtin}"
    out = io.BytesIO()
    # Error level M survives a smudged print; a quiet zone of 4 modules is what scanners expect.
    segno.make_qr(url, error="m").save(out, kind="svg", scale=8, border=4, xmldecl=False, title=url)
    return Response(out.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


async def demo_redirect(request: Request) -> Response:
    return RedirectResponse("/demo/", status_code=308)


routes: list[BaseRoute] = [
    Route("/cdn/v1/{name}", widget_file, methods=["GET", "HEAD"], name="widget_file"),
    Route("/p/{campaign}/{gtin}", product_page, methods=["GET", "HEAD"], name="product_page"),
    Route("/p/{campaign}/{gtin}/qr.svg", product_qr, methods=["GET", "HEAD"], name="product_qr"),
    Route("/demo", demo_redirect, methods=["GET", "HEAD"]),
    Mount("/demo", app=StaticFiles(directory=STATIC / "demo", html=True), name="demo"),
]
