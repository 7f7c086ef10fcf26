"""`nearcart campaign validate FILE` and `nearcart campaign push FILE`."""

from __future__ import annotations

import sys
from pathlib import Path

import asyncpg

from cache.db import DATABASE_UNAVAILABLE
from edge_api.campaign_rules import CampaignFileError, load_campaign_file
from edge_api.campaign_store import store_campaign
from edge_api.settings import Settings


def run_validate_command(path: Path) -> int:
    """`nearcart campaign validate FILE`: 0 valid, 1 errors (one line each, JSON path first), 2 unreadable."""
    try:
        campaign, errors = load_campaign_file(path)
    except CampaignFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for json_path, message in errors:
        print(f"{json_path}: {message}")
    if campaign is None:
        print(f"{path}: {len(errors)} error(s)", file=sys.stderr)
        return 1
    print(f"{path}: campaign {campaign.id!r} is valid ({len(campaign.products)} product(s))")
    return 0


async def run_push_command(settings: Settings, path: Path) -> int:
    """`nearcart campaign push FILE`: validate, then store in PostgreSQL. Exit codes as `validate`."""
    try:
        campaign, errors = load_campaign_file(path)
    except CampaignFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if campaign is None:
        for json_path, message in errors:
            print(f"{json_path}: {message}")
        print(f"{path}: {len(errors)} error(s), nothing pushed", file=sys.stderr)
        return 1
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=settings.database_timeout_s)
    except DATABASE_UNAVAILABLE as exc:
        print(f"error: cannot reach PostgreSQL: {exc}", file=sys.stderr)
        return 2
    try:
        etag = await store_campaign(conn, campaign, settings.database_timeout_s)
    finally:
        await conn.close()
    print(f"pushed campaign {campaign.id!r} (ETag {etag})")
    return 0
