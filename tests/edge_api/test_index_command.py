from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from cache.index import live_version
from cache.keys import Keys
from edge_api.commands.index import run_build_command
from edge_api.commands.ingest import run_ingest_command
from edge_api.settings import Settings

FEEDS = {
    "retailers": "retailer_id,name,logo_url,cart_url_template,delivery_countries\n"
    "shopco,Shop Co,,https://shop.example/cart?add={gtin},FR\n",
    "stores": "retailer_id,store_id,name,address,postal_code,city,country,lat,lon\n"
    "shopco,paris-1,Shop Co Rivoli,1 rue de Rivoli,75001,Paris,FR,48.8566,2.3522\n",
    "offers": "retailer_id,store_id,gtin,price,currency,quantity,modes,updated_at\n"
    "shopco,paris-1,3017620422003,2.99,EUR,5,in_store,2024-05-01T10:00:00+02:00\n"
    "shopco,paris-1,96385074,1.00,EUR,0,in_store,2024-05-01T10:00:00+02:00\n"
    "shopco,,3017620422003,3.49,EUR,9,delivery,2024-05-01T10:00:00+02:00\n",
}


async def test_index_build_command_swaps_in_a_version_and_counts_the_in_stock_offers(
    settings: Settings, db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for kind, text in FEEDS.items():
        feed = tmp_path / f"{kind}.csv"
        feed.write_text(text, encoding="utf-8")
        assert await run_ingest_command(settings, kind, [feed]) == 0
    capsys.readouterr()
    await run_build_command(settings)
    version = await live_version(redis, keys)
    assert version is not None
    assert capsys.readouterr().out.startswith(f"index version {version} live: 2 in-stock offers in ")
