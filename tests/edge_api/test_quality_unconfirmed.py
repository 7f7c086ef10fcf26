"""Offers no feed has confirmed for longer than the threshold, as shoppers see them: flagged `"unconfirmed": true`
in `/v1/offers` for a retailer that shows them, left out for one that hides them, plain again once confirmed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
import redis.asyncio as aioredis
from starlette.testclient import TestClient

from cache.index import build_index
from cache.ingest import ingest_files
from cache.keys import MODE_BITS, Keys
from edge_api.app import create_app
from edge_api.commands.index import run_build_command
from edge_api.quality_check import check_quality
from edge_api.settings import Settings
from tests.cache.test_ingest import OFFER_HEADER, write
from tests.edge_api.test_quality import G1, G2, add_offer, add_retailer

DELIVERY = MODE_BITS["delivery"]
STORE_HEADER = "retailer_id,store_id,name,address,postal_code,city,country,lat,lon\n"


@pytest.fixture
def checking(settings: Settings) -> Settings:
    """No basket link fetched by the check, no answer kept by the API: each answer shows the index as it is."""
    return msgspec.structs.replace(settings, links_per_retailer=0, quality_cache_s=0.0, micro_cache_ttl_s=0.0,
                                   micro_cache_live_ttl_s=0.0)


def shown(client: TestClient, gtin: str) -> list[tuple[str, str, str, Any]]:
    """(retailer, mode, price, its `unconfirmed` field or None when absent) of each offer a shopper in Paris gets."""
    answer = client.get("/v1/offers", params={"gtin": gtin, "lat": 48.85, "lon": 2.35, "country": "FR"})
    assert answer.status_code == 200, answer.text
    return sorted(((o["retailer"]["id"], o["mode"], o["price"]["amount"], o.get("unconfirmed", None))
                   for o in answer.json()["offers"]), key=repr)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


async def test_a_retailer_showing_unconfirmed_offers_has_them_flagged_until_its_feed_confirms_them(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, checking: Settings, tmp_path: Path
) -> None:
    await add_retailer(db, "relaxed")
    await add_offer(db, "relaxed", G1, "2.00", age=timedelta(days=3))
    await add_offer(db, "relaxed", G1, "2.50", age=timedelta(days=3), store="", modes=DELIVERY)
    await add_offer(db, "relaxed", G2, "3.00", age=timedelta(hours=47))
    await build_index(db, redis, keys, grace_s=0)
    with TestClient(create_app(checking)) as client:
        # No check has judged them yet: plain offers, no field at all.
        assert shown(client, G1) == [("relaxed", "delivery", "2.50", None), ("relaxed", "in_store", "2.00", None)]
        await check_quality(db, redis, keys, checking)
        assert shown(client, G1) == [("relaxed", "delivery", "2.50", True), ("relaxed", "in_store", "2.00", True)]
        assert shown(client, G2) == [("relaxed", "in_store", "3.00", None)]  # confirmed 47 h ago: within 48 h
        # `nearcart index build` writes the flag too.
        await run_build_command(checking)
        assert shown(client, G1) == [("relaxed", "delivery", "2.50", True), ("relaxed", "in_store", "2.00", True)]
        # Re-sent with the time it already had (another price, too late to count): still unconfirmed.
        stored = await db.fetchval("SELECT updated_at FROM offers WHERE store_id = 'paris' AND gtin = $1", G1)
        resent = f"relaxed,paris,{G1},1.80,EUR,5,in_store,{stored.isoformat()}\n"
        await ingest_files(db, redis, keys, "offers", [write(tmp_path, "resent.csv", OFFER_HEADER + resent)])
        await check_quality(db, redis, keys, checking)
        assert shown(client, G1) == [("relaxed", "delivery", "2.50", True), ("relaxed", "in_store", "2.00", True)]
        # Its feed confirms the store offer with a new price: the ingest's write is a plain offer at once,
        # and the flagged one it replaces is gone (one offer, not two).
        store = f"relaxed,paris,{G1},1.90,EUR,5,in_store,{now_iso()}\n"
        await ingest_files(db, redis, keys, "offers", [write(tmp_path, "store.csv", OFFER_HEADER + store)])
        assert shown(client, G1) == [("relaxed", "delivery", "2.50", True), ("relaxed", "in_store", "1.90", None)]
        # It confirms the delivery offer unchanged (nothing for the index to rewrite): the next check clears it.
        delivery = f"relaxed,,{G1},2.50,EUR,5,delivery,{now_iso()}\n"
        await ingest_files(db, redis, keys, "offers", [write(tmp_path, "delivery.csv", OFFER_HEADER + delivery)])
        await check_quality(db, redis, keys, checking)
        assert shown(client, G1) == [("relaxed", "delivery", "2.50", None), ("relaxed", "in_store", "1.90", None)]
        assert await db.fetchval("SELECT count(*) FROM offers_unconfirmed") == 0


async def test_switching_between_showing_and_hiding_moves_offers_between_flagged_and_hidden(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, checking: Settings, tmp_path: Path
) -> None:
    await add_retailer(db, "fickle")
    await add_offer(db, "fickle", G1, "2.00", age=timedelta(days=3))
    await add_offer(db, "fickle", G1, "2.50", age=timedelta(days=3), store="", modes=DELIVERY)
    await build_index(db, redis, keys, grace_s=0)
    flagged = [("fickle", "delivery", "2.50", True), ("fickle", "in_store", "2.00", True)]
    with TestClient(create_app(checking)) as client:
        await check_quality(db, redis, keys, checking)
        assert shown(client, G1) == flagged
        await db.execute("UPDATE retailers SET unconfirmed_offers = 'hide' WHERE retailer_id = 'fickle'")
        await check_quality(db, redis, keys, checking)
        assert shown(client, G1) == []
        await db.execute("UPDATE retailers SET unconfirmed_offers = 'show' WHERE retailer_id = 'fickle'")
        await check_quality(db, redis, keys, checking)
        assert shown(client, G1) == flagged
        # Its store moves: the offer follows it, still flagged, once.
        moved = STORE_HEADER + "fickle,paris,Fickle Paris,1 rue de Rivoli,75001,Paris,FR,48.86,2.35\n"
        await ingest_files(db, redis, keys, "stores", [write(tmp_path, "moved.csv", moved)])
        answer = client.get("/v1/offers", params={"gtin": G1, "lat": 48.85, "lon": 2.35, "modes": "in_store"})
        [offer] = answer.json()["offers"]
        assert offer["unconfirmed"] is True and offer["store"]["distance_km"] > 1.0
        # Confirmed unchanged, then moved again before any check: it follows as a plain offer, once.
        again = f"fickle,paris,{G1},2.00,EUR,5,in_store,{now_iso()}\n"
        await ingest_files(db, redis, keys, "offers", [write(tmp_path, "again.csv", OFFER_HEADER + again)])
        back = STORE_HEADER + "fickle,paris,Fickle Paris,1 rue de Rivoli,75001,Paris,FR,48.85,2.35\n"
        await ingest_files(db, redis, keys, "stores", [write(tmp_path, "back.csv", back)])
        assert shown(client, G1) == [("fickle", "delivery", "2.50", True), ("fickle", "in_store", "2.00", None)]


def test_openapi_documents_the_flag_as_an_optional_boolean_of_an_offer(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        document = client.get("/openapi.json").json()
    offer = document["components"]["schemas"]["Offer"]
    assert offer["properties"]["unconfirmed"]["type"] == "boolean"
    assert "unconfirmed" not in offer["required"]
    assert "unconfirmed" in document["paths"]["/v1/offers"]["get"]["description"]
