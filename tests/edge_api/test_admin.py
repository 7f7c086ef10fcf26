from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import jwt
import msgspec
import pytest
import redis.asyncio as aioredis
from starlette.testclient import TestClient

from cache.keys import Keys
from edge_api.app import create_app
from edge_api.campaign_store import store_campaign
from edge_api.event_buffer import append_events
from edge_api.schemas import Campaign
from edge_api.settings import Settings
from tests.conftest import TEST_SECRET

GTIN = "03017620422003"


def token(role: str, secret: str = TEST_SECRET, expires_in: int = 300, **claims: Any) -> str:
    payload: dict[str, Any] = {"sub": "someone@example.com", "role": role, "exp": int(time.time()) + expires_in}
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, secret, algorithm="HS256")


def bearer(role: str, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, **kwargs)}"}


# Minted at import, used by tests that may run long after it on a slow machine: a lifetime beyond any suite run.
SUITE_S = 4 * 3600
ADMIN = bearer("admin", expires_in=SUITE_S)
ACME = bearer("brand:acme", expires_in=SUITE_S)
GLOBEX = bearer("brand:globex", expires_in=SUITE_S)
SHOP = bearer("retailer:shop", expires_in=SUITE_S)
MART = bearer("retailer:mart", expires_in=SUITE_S)


def campaign_json(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "spring",
        "brand": "acme",
        "locale": "fr",
        "products": [{"gtin": "3017620422003", "label": "Jar 400 g"}],
        "modes": ["in_store", "delivery"],
    }
    body.update(changes)
    return body


@pytest.fixture
async def catalog(db: asyncpg.Connection) -> None:
    for campaign in (campaign_json(), campaign_json(id="autumn"), campaign_json(id="rival", brand="globex")):
        await store_campaign(db, msgspec.convert(campaign, Campaign), 5.0)
    await db.execute(
        "INSERT INTO retailers (retailer_id, name, cart_url_template) VALUES"
        " ('shop', 'Shop', 'https://shop.example/{gtin}'), ('mart', 'Mart', 'https://mart.example/{gtin}')"
    )
    await db.execute(
        "INSERT INTO stores (retailer_id, store_id, name, country, lat, lon) VALUES"
        " ('shop', 's1', 'Shop Opéra', 'FR', 48.87, 2.33), ('shop', 's2', 'Shop Bastille', 'FR', 48.85, 2.37),"
        " ('shop', 's3', 'Shop Nation', 'FR', 48.84, 2.39), ('mart', 'm1', 'Mart Lyon', 'FR', 45.76, 4.83)"
    )
    await db.execute(
        "INSERT INTO offers (retailer_id, store_id, gtin, price, currency, quantity, modes, updated_at) VALUES"
        f" ('shop', 's1', '{GTIN}', 2.99, 'EUR', 4, 1, now()), ('shop', 's2', '{GTIN}', 3.10, 'EUR', 0, 3, now()),"
        " ('shop', '', '00000000000017', 2.50, 'EUR', 9, 4, now()),"
        f" ('mart', 'm1', '{GTIN}', 2.79, 'EUR', 1, 1, now())"
    )


@pytest.fixture
def client(settings: Settings, catalog: None) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


# --- authentication --------------------------------------------------------------------------


def test_missing_token_is_401_with_a_bearer_challenge(client: TestClient) -> None:
    response = client.get("/admin/v1/campaigns")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["parameter"] == "Authorization"


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {token('admin', secret='not-the-secret-but-as-long-as-it-32')}",
        f"Bearer {token('admin', expires_in=-3600)}",
        f"Bearer {token('admin', exp=None)}",
        f"Bearer {token('admin', sub=None)}",
        f"Bearer {token('superuser')}",
        f"Bearer {jwt.encode({'sub': 'x', 'role': 'admin', 'exp': int(time.time()) + 60}, None, algorithm='none')}",
        f"Basic {token('admin')}",
        "Bearer not.a.jwt",
    ],
    ids=["forged", "expired", "no-exp", "no-sub", "unknown-role", "alg-none", "not-bearer", "garbage"],
)
def test_unusable_token_is_401(client: TestClient, authorization: str) -> None:
    response = client.get("/admin/v1/campaigns", headers={"Authorization": authorization})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["cache-control"] == "no-store"


def test_expired_token_says_it_expired(client: TestClient) -> None:
    response = client.get("/admin/v1/campaigns", headers=bearer("admin", expires_in=-3600))
    assert "expired" in response.json()["error"]["message"]


# --- campaigns -------------------------------------------------------------------------------


def test_admin_lists_every_campaign_and_a_brand_only_its_own(client: TestClient) -> None:
    every = client.get("/admin/v1/campaigns", headers=ADMIN).json()["campaigns"]
    assert sorted(c["id"] for c in every) == ["autumn", "rival", "spring"]
    own = client.get("/admin/v1/campaigns", headers=ACME).json()["campaigns"]
    assert sorted(c["id"] for c in own) == ["autumn", "spring"]
    assert all(c["brand"] == "acme" for c in own)


def test_campaign_list_pages_with_limit_and_after(client: TestClient) -> None:
    first = client.get("/admin/v1/campaigns", params={"limit": 2}, headers=ADMIN).json()
    assert [c["id"] for c in first["campaigns"]] == ["autumn", "rival"]
    rest = client.get("/admin/v1/campaigns", params={"limit": 2, "after": first["next"]}, headers=ADMIN).json()
    assert [c["id"] for c in rest["campaigns"]] == ["spring"] and rest["next"] is None


def test_retailer_has_no_access_to_campaigns(client: TestClient) -> None:
    assert client.get("/admin/v1/campaigns", headers=SHOP).status_code == 403
    assert client.get("/admin/v1/campaigns/spring", headers=SHOP).status_code == 403
    assert client.put("/admin/v1/campaigns/spring", json=campaign_json(), headers=SHOP).status_code == 403


def test_brand_reads_its_campaign_in_full_but_not_another_brands(client: TestClient) -> None:
    own = client.get("/admin/v1/campaigns/spring", headers=ACME)
    assert own.status_code == 200
    assert own.json()["brand"] == "acme" and own.json()["products"][0]["label"] == "Jar 400 g"
    assert own.headers["etag"]
    other = client.get("/admin/v1/campaigns/rival", headers=ACME)
    assert other.status_code == 403
    assert client.get("/admin/v1/campaigns/rival", headers=ADMIN).status_code == 200
    assert client.get("/admin/v1/campaigns/nope", headers=ADMIN).status_code == 404


def test_brand_saves_its_campaign_and_the_public_api_serves_it(client: TestClient) -> None:
    created = client.put("/admin/v1/campaigns/summer", json=campaign_json(id="summer", locale="en"), headers=ACME)
    assert created.status_code == 201, created.text
    assert created.json()["created"] is True
    changed = client.put("/admin/v1/campaigns/summer", json=campaign_json(id="summer", locale="de"), headers=ACME)
    assert changed.status_code == 200 and changed.headers["etag"] != created.headers["etag"]
    assert client.get("/admin/v1/campaigns/summer", headers=ACME).json()["locale"] == "de"
    assert client.get("/v1/campaigns/summer").json()["locale"] == "de"


def test_brand_cannot_save_a_campaign_for_another_brand(client: TestClient) -> None:
    response = client.put("/admin/v1/campaigns/summer", json=campaign_json(id="summer", brand="globex"), headers=ACME)
    assert response.status_code == 403
    assert response.json()["error"]["parameter"] == "$.brand"


def test_brand_cannot_take_over_another_brands_campaign_id(client: TestClient) -> None:
    response = client.put("/admin/v1/campaigns/rival", json=campaign_json(id="rival"), headers=ACME)
    assert response.status_code == 403
    assert client.get("/admin/v1/campaigns/rival", headers=ADMIN).json()["brand"] == "globex"


def test_put_validation_names_the_json_path(client: TestClient) -> None:
    broken = campaign_json(products=[{"gtin": "3017620422003", "label": ""}], theme={"primary_color": "blue"})
    response = client.put("/admin/v1/campaigns/spring", json=broken, headers=ADMIN)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["parameter"] == "$.products[0].label"
    assert "$.theme.primary_color" in error["message"]
    assert client.get("/admin/v1/campaigns/spring", headers=ADMIN).json()["theme"]["primary_color"] != "blue"


def test_put_refuses_a_body_whose_id_differs_from_the_path(client: TestClient) -> None:
    response = client.put("/admin/v1/campaigns/spring", json=campaign_json(id="autumn"), headers=ADMIN)
    assert response.status_code == 400
    assert response.json()["error"]["parameter"] == "$.id"


def test_put_of_something_that_is_not_json_is_400(client: TestClient) -> None:
    response = client.put("/admin/v1/campaigns/spring", content=b"{ nope", headers=ADMIN)
    assert response.status_code == 400
    assert response.json()["error"]["parameter"] == "$"


# --- statistics ------------------------------------------------------------------------------


def beacon(kind: str, campaign: str, retailer: str = "", **more: str | int) -> dict[str, str | int]:
    return {"kind": kind, "campaign": campaign, "gtin": "3017620422003", "retailer": retailer, "region": "FR-75",
            "ts": int(time.time() * 1000), **more}


def click(campaign: str, retailer: str, mode: str, cents: int) -> dict[str, str | int]:
    return beacon("click", campaign, retailer, mode=mode, price_cents=cents, currency="EUR")


@pytest.fixture
async def events(redis: aioredis.Redis, keys: Keys, catalog: None) -> None:
    """Events already in the stream when the server starts: its aggregator counts them."""
    await append_events(redis, keys, [
        beacon("open", "spring"), beacon("open", "spring"), click("spring", "shop", "in_store", 299),
        click("spring", "mart", "delivery", 150), beacon("open", "rival"), click("rival", "shop", "in_store", 500),
        beacon("search", "spring", shown='[["shop","in_store",2],["mart","delivery",1]]'),
    ])


def stats_when_counted(client: TestClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    """Stats once the server's background aggregator has drained the stream (it starts with the server)."""
    deadline = time.monotonic() + 20
    while True:
        response = client.get("/admin/v1/stats", params=params, headers=headers)
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        if view["totals"]["clicks"] or time.monotonic() > deadline:
            return view


@pytest.fixture
def counted(settings: Settings, events: None) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        stats_when_counted(client, ADMIN)
        yield client


def figures(table: list[dict[str, Any]], *names: str) -> dict[str, tuple[Any, ...]]:
    return {row["key"]: tuple(row[name] for name in names) for row in table}


def test_admin_sees_every_campaigns_figures(counted: TestClient) -> None:
    view = stats_when_counted(counted, ADMIN)
    totals = view["totals"]
    assert (totals["opens"], totals["searches"], totals["offers_shown"], totals["clicks"]) == (3, 1, 3, 3)
    assert totals["click_through_rate"] == 1.0 and totals["intent_value"] == {"EUR": "9.49"}
    assert figures(view["by_retailer"], "clicks", "offers_shown") == {"shop": (2, 2), "mart": (1, 1)}
    assert figures(view["by_mode"], "clicks") == {"in_store": (2,), "delivery": (1,)}
    assert figures(view["by_region"], "opens") == {"FR-75": (3,)}
    today = datetime.now(UTC).date().isoformat()
    assert [(d["day"], d["opens"]) for d in view["daily"]][-1] == (today, 3)
    assert len(view["daily"]) == 30 and view["campaigns"] is None


def test_brand_sees_statistics_of_its_campaigns_only(counted: TestClient) -> None:
    own = stats_when_counted(counted, ACME)
    assert own["campaigns"] == ["autumn", "spring"]
    assert (own["totals"]["opens"], own["totals"]["clicks"], own["totals"]["intent_value"]) == (2, 2, {"EUR": "4.49"})
    refused = counted.get("/admin/v1/stats", params={"campaign": "spring,rival"}, headers=ACME)
    # Another brand's campaign is answered as one that does not exist: no hint either way.
    assert refused.status_code == 404 and refused.json()["error"]["parameter"] == "campaign"
    for campaign in ("rival", "nosuch"):
        answer = counted.get("/admin/v1/stats", params={"campaign": campaign}, headers=ACME)
        assert answer.status_code == 404 and answer.json()["error"]["message"] == f"no campaign {campaign!r}"
    assert stats_when_counted(counted, GLOBEX, campaign="rival")["totals"]["opens"] == 1


def test_retailer_sees_only_rows_of_its_own_retailer_id(counted: TestClient) -> None:
    view = stats_when_counted(counted, SHOP)
    assert figures(view["by_retailer"], "clicks") == {"shop": (2,)}
    assert (view["totals"]["opens"], view["totals"]["clicks"], view["totals"]["intent_value"]) == (
        0, 2, {"EUR": "7.99"})
    assert counted.get("/admin/v1/stats", params={"retailer": "mart"}, headers=SHOP).status_code == 404
    assert stats_when_counted(counted, MART, campaign="spring")["totals"]["clicks"] == 1


def test_filters_narrow_the_figures(counted: TestClient) -> None:
    delivery = stats_when_counted(counted, ADMIN, mode="delivery")
    assert (delivery["totals"]["clicks"], delivery["totals"]["intent_value"]) == (1, {"EUR": "1.50"})
    assert figures(delivery["by_retailer"], "clicks") == {"mart": (1,)}
    product = stats_when_counted(counted, ADMIN, gtin="3017620422003", region="FR-75")
    assert product["totals"] == stats_when_counted(counted, ADMIN)["totals"]
    elsewhere = counted.get("/admin/v1/stats", params={"region": "BE"}, headers=ADMIN).json()
    assert elsewhere["totals"]["opens"] == 0
    bad = counted.get("/admin/v1/stats", params={"mode": "by_drone"}, headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["error"]["parameter"] == "mode"
    bad = counted.get("/admin/v1/stats", params={"gtin": "3017620422004"}, headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["error"]["parameter"] == "gtin"


def test_csv_holds_the_same_figures_as_the_json(counted: TestClient) -> None:
    view = stats_when_counted(counted, ADMIN)
    response = counted.get("/admin/v1/stats", params={"format": "csv"}, headers=ADMIN)
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0].split(",")[-1] == "intent_value_EUR"
    total = dict(zip(lines[0].split(","), lines[1].split(","), strict=True))
    assert (total["table"], total["opens"], total["clicks"], total["intent_value_EUR"]) == (
        "total", str(view["totals"]["opens"]), str(view["totals"]["clicks"]), view["totals"]["intent_value"]["EUR"])
    assert len(lines) == 1 + 1 + 30 + 1 + 2 + 2 + 1  # total, days, product, retailers, modes, region


def test_stats_window_is_bounded_by_from_and_to(counted: TestClient) -> None:
    past = counted.get("/admin/v1/stats", params={"from": "2020-01-01", "to": "2020-01-31"}, headers=ADMIN)
    assert past.status_code == 200 and past.json()["totals"]["opens"] == 0 and len(past.json()["daily"]) == 31
    reversed_ = counted.get("/admin/v1/stats", params={"from": "2020-02-01", "to": "2020-01-01"}, headers=ADMIN)
    assert reversed_.status_code == 400 and reversed_.json()["error"]["parameter"] == "from"
    bad = counted.get("/admin/v1/stats", params={"from": "yesterday"}, headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["error"]["parameter"] == "from"


# --- retailers' stores and offers ------------------------------------------------------------


def test_retailer_sees_its_own_stores_and_offers(client: TestClient) -> None:
    stores = client.get("/admin/v1/retailers/shop/stores", headers=SHOP).json()["stores"]
    assert [s["id"] for s in stores] == ["s1", "s2", "s3"]
    offers = client.get("/admin/v1/retailers/shop/offers", headers=SHOP).json()["offers"]
    assert {(o["store_id"], o["gtin"]) for o in offers} == {("s1", GTIN), ("s2", GTIN), ("", "00000000000017")}
    online = next(o for o in offers if o["store_id"] == "")
    assert online["price"] == "2.50" and online["modes"] == ["delivery"]


def test_retailer_cannot_see_another_retailers_stores_or_offers(client: TestClient) -> None:
    assert client.get("/admin/v1/retailers/mart/stores", headers=SHOP).status_code == 403
    assert client.get("/admin/v1/retailers/mart/offers", headers=SHOP).status_code == 403


def test_brands_have_no_access_to_retailers_and_admin_has(client: TestClient) -> None:
    assert client.get("/admin/v1/retailers/shop/stores", headers=ACME).status_code == 403
    assert client.get("/admin/v1/retailers/shop/offers", headers=ACME).status_code == 403
    assert [s["id"] for s in client.get("/admin/v1/retailers/mart/stores", headers=ADMIN).json()["stores"]] == ["m1"]
    assert client.get("/admin/v1/retailers/nobody/stores", headers=ADMIN).status_code == 404


def test_offers_filter_by_gtin_in_any_gtin_form(client: TestClient) -> None:
    offers = client.get("/admin/v1/retailers/shop/offers", params={"gtin": "3017620422003"}, headers=SHOP).json()
    assert {o["store_id"] for o in offers["offers"]} == {"s1", "s2"}
    bad = client.get("/admin/v1/retailers/shop/offers", params={"gtin": "3017620422004"}, headers=SHOP)
    assert bad.status_code == 400 and bad.json()["error"]["parameter"] == "gtin"


def test_stores_and_offers_page_through_every_row_once(client: TestClient) -> None:
    for path, items in (("stores", "stores"), ("offers", "offers")):
        seen: list[Any] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1} | ({"after": after} if after else {})
            page = client.get(f"/admin/v1/retailers/shop/{path}", params=params, headers=SHOP).json()
            seen += page[items]
            after = page["next"]
            if after is None:
                break
        assert len(seen) == 3 and len({msgspec.json.encode(item) for item in seen}) == 3


def test_bad_limit_names_the_parameter(client: TestClient) -> None:
    response = client.get("/admin/v1/retailers/shop/stores", params={"limit": 0}, headers=SHOP)
    assert response.status_code == 400
    assert response.json()["error"]["parameter"] == "limit"
