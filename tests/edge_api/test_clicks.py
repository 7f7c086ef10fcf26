from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import asyncpg
import msgspec
import pytest
import redis.asyncio as aioredis
from starlette.testclient import TestClient

from cache.directory import refresh_directory
from cache.keys import Keys
from edge_api.app import create_app
from edge_api.campaign_store import store_campaign
from edge_api.schemas import Campaign, Product
from edge_api.settings import Settings
from edge_api.tokens import ISSUE_STEP_S, ClickTarget, click_url, sign_click

TEMPLATE = "https://www.shop.example/cart/add?ean={gtin}&store={store_id}&qty={qty}"
GTIN = "03017620422003"
SHOPPER = ("81.2.69.160", 50000)


@pytest.fixture
async def catalog(db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys) -> None:
    await db.executemany(
        "INSERT INTO retailers (retailer_id, name, cart_url_template) VALUES ($1, $2, $3)",
        [
            ("shop", "Shop", TEMPLATE),
            # A retailer whose host is built from a placeholder: a store id could then pick the host.
            ("sly", "Sly", "https://{store_id}.sly.example/cart?ean={gtin}"),
            ("plain", "Plain", "http://www.plain.example/cart?ean={gtin}"),
        ],
    )
    await refresh_directory(db, redis, keys)
    campaign = Campaign(
        id="spring",
        brand="acme",
        locale="fr",
        products=[Product(gtin="3017620422003", label="Jar")],
        tracking={"utm_source": "nearcart", "utm_campaign": "spring"},
    )
    await store_campaign(db, campaign, 2.0)


@pytest.fixture
def client(settings: Settings, catalog: None) -> Iterator[TestClient]:
    # These tests read the event stream itself: no aggregator may drain it first.
    settings = msgspec.structs.replace(settings, aggregate_events=False)
    with TestClient(create_app(settings), client=SHOPPER, follow_redirects=False) as client:
        yield client


def token(settings: Settings, retailer: str = "shop", store: str = "s1", issued_at: int | None = None) -> str:
    issued = int(time.time()) if issued_at is None else issued_at
    return sign_click(settings, ClickTarget(retailer, store, GTIN, "spring", issued))


def assert_refused(response: object, status: int) -> None:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert "location" not in response.headers  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("text/html")  # type: ignore[attr-defined]


def test_click_lands_in_the_retailers_basket_with_utm_parameters(client: TestClient, settings: Settings) -> None:
    response = client.get(click_url("", token(settings)))
    assert response.status_code == 302
    assert response.headers["cache-control"] == "no-store"
    target = urlsplit(response.headers["location"])
    assert (target.scheme, target.hostname, target.path) == ("https", "www.shop.example", "/cart/add")
    assert parse_qs(target.query) == {
        "ean": [GTIN], "store": ["s1"], "qty": ["1"], "utm_source": ["nearcart"], "utm_campaign": ["spring"],
    }


async def test_click_is_recorded_with_its_price_mode_and_region_only(
    client: TestClient, settings: Settings, redis: aioredis.Redis, keys: Keys
) -> None:
    priced = sign_click(settings, ClickTarget("shop", "s1", GTIN, "spring", int(time.time()), 299, "EUR"))
    assert client.get(f"/v1/go/{priced}?m=click_collect").status_code == 302
    entries = await redis.xrange(keys.events)
    assert len(entries) == 1
    fields = {k.decode(): v.decode() for k, v in entries[0][1].items()}
    assert fields["kind"] == "click"
    assert (fields["campaign"], fields["gtin"], fields["retailer"], fields["mode"]) == (
        "spring", GTIN, "shop", "click_collect")
    assert (fields["price_cents"], fields["currency"]) == ("299", "EUR")
    assert fields["region"] == "GB"  # the shopper's address is in London: a country, nothing finer
    assert "81.2.69" not in str(entries) and "s1" not in fields.values()


@pytest.mark.parametrize(("store", "said", "mode"), [
    ("", "in_store", "delivery"), ("s1", "", "in_store"), ("s1", "delivery", "in_store"),
    ("s1", "in_store", "in_store"),
])
async def test_click_mode_comes_from_the_link_and_the_widgets_hint(
    client: TestClient, settings: Settings, redis: aioredis.Redis, keys: Keys, store: str, said: str, mode: str
) -> None:
    assert client.get(f"/v1/go/{token(settings, store=store)}", params={"m": said}).status_code == 302
    entries = await redis.xrange(keys.events)
    assert entries[-1][1][b"mode"] == mode.encode()


def test_altered_token_is_refused(client: TestClient, settings: Settings) -> None:
    genuine = token(settings)
    body, signature = genuine.split(".")
    other = token(settings, store="s2").split(".")[0]
    assert_refused(client.get(f"/v1/go/{other}.{signature}"), 400)
    flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    assert_refused(client.get(f"/v1/go/{flipped}.{signature}"), 400)
    assert_refused(client.get(f"/v1/go/{genuine[:-3]}"), 400)


@pytest.mark.parametrize("garbage", ["x", "a.b", "a.b.c", "%00", "x" * 2000])
def test_garbage_token_is_refused(client: TestClient, garbage: str) -> None:
    assert_refused(client.get(f"/v1/go/{garbage}"), 400)


def test_forged_token_is_refused(client: TestClient, settings: Settings) -> None:
    forger = msgspec.structs.replace(settings, secret="guessed-secret")
    assert_refused(client.get(f"/v1/go/{token(forger)}"), 400)


def test_expired_token_is_refused(client: TestClient, settings: Settings) -> None:
    stale = int(time.time()) - ISSUE_STEP_S - settings.click_token_ttl_s - 1
    assert_refused(client.get(f"/v1/go/{token(settings, issued_at=stale)}"), 410)


def test_previous_secret_is_still_accepted_after_rotation(settings: Settings, catalog: None) -> None:
    old_link = f"/v1/go/{token(settings)}"
    rotated = msgspec.structs.replace(settings, secret="new-secret", previous_secret=settings.secret)
    with TestClient(create_app(rotated), follow_redirects=False) as client:
        assert client.get(old_link).status_code == 302
        assert client.get(f"/v1/go/{token(rotated)}").status_code == 302
    dropped = msgspec.structs.replace(settings, secret="new-secret", previous_secret="")
    with TestClient(create_app(dropped), follow_redirects=False) as client:
        assert_refused(client.get(old_link), 400)


def test_store_id_cannot_change_the_templates_host(client: TestClient, settings: Settings) -> None:
    assert_refused(client.get(f"/v1/go/{token(settings, retailer='sly', store='evil.example/')}"), 400)


def test_non_https_basket_is_refused(client: TestClient, settings: Settings) -> None:
    assert_refused(client.get(f"/v1/go/{token(settings, retailer='plain')}"), 400)


def test_unknown_retailer_gets_an_error_page(client: TestClient, settings: Settings) -> None:
    assert_refused(client.get(f"/v1/go/{token(settings, retailer='gone')}"), 404)


def test_a_token_is_its_payload_signed_with_hmac_sha256_of_the_secret(settings: Settings) -> None:
    # The documented format, checked with the standard library alone: another service holding
    # NEARCART_SECRET can verify a click link without this code.
    # Many tokens, so that signatures use the URL-safe alphabet's "-" and "_" and every padding length.
    seen = set()
    for n in range(300):
        token = sign_click(settings, ClickTarget("shop", f"s{n}", GTIN, "spring" * (n % 3), int(time.time())))
        body, signature = token.split(".")
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        expected = hmac.new(settings.secret.encode(), payload, hashlib.sha256).digest()
        assert base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)) == expected
        assert body == base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
        assert msgspec.msgpack.decode(payload)[1:5] == ["shop", f"s{n}", GTIN, "spring" * (n % 3)]
        seen.update(token)
    assert {"-", "_"} <= seen and not {"=", "+", "/"} & seen


def test_links_signed_before_prices_rode_along_still_lead_to_the_basket(client: TestClient, settings: Settings) -> None:
    from edge_api.b64url import encode as b64
    from edge_api.tokens import _mac

    # Exactly what a link signed by the previous release held: seven fields, no price.
    now = int(time.time())
    payload = msgspec.msgpack.encode([1, "shop", "s1", GTIN, "spring", now, now + 3600])
    old_link = f"{b64(payload)}.{b64(_mac(settings.secret, payload))}"
    assert client.get(f"/v1/go/{old_link}").status_code == 302
