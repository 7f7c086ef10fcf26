"""Every back-office route, for `edge_api.app` to mount: pages under `/admin/`, files under `/admin/static/`."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from backoffice import (
    campaign_pages,
    dashboard,
    feed_pages,
    login,
    onboarding,
    quality_pages,
    retailer_pages,
    token_pages,
)

STATIC_DIR = Path(__file__).parent / "static"

routes: list[BaseRoute] = [
    *login.routes,
    *dashboard.routes,
    *campaign_pages.routes,
    *token_pages.routes,
    *quality_pages.routes,
    # Before retailer_pages: /admin/retailers/invite is not a retailer's page.
    *onboarding.routes,
    *retailer_pages.routes,
    *feed_pages.routes,
    Mount("/admin/static", StaticFiles(directory=STATIC_DIR), name="office_static"),
]
