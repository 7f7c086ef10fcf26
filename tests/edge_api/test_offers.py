from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import msgspec
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from cache.index import apply_offer_changes, build_index
from cache.index_types import OfferChange, OfferState
from cache.keys import Keys
from edge_api.app import create_app
from edge_api.settings import Settings
from geo.distance import great_circle_km
from geo.geoip import GeoIP
from geo.postal import lookup_postal_code
from tests.random_catalog import RandomCatalog, in_stock_within, write_random_catalog

BOUNDARY_KM = 0.002


@pytest.fixture
async def catalog(db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys) -> RandomCatalog:
    catalog = await write_random_catalog(db, seed=21, stores=1500, gtins=20)
    await build_index(db, redis, keys, grace_s=0)
    return catalog


@pytest.fixture
def client(settings: Settings, catalog: RandomCatalog) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


async def test_offers_over_http_match_brute_force(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, settings: Settings
) -> None:
    # Its own, larger catalog: 1,500 stores, 100 products, one random point per product and more.
    catalog = await write_random_catalog(db, seed=22, stores=1500, gtins=100)
    await build_index(db, redis, keys, grace_s=0)
    with TestClient(create_app(settings)) as client:
        check_against_brute_force(client, catalog)


def check_against_brute_force(client: TestClient, catalog: RandomCatalog) -> None:
    rng = random.Random(5)
    for i in range(150):
        gtin = catalog.gtins[i] if i < len(catalog.gtins) else rng.choice(catalog.gtins)
        lat, lon = 48.85 + rng.uniform(-0.6, 0.6), 2.35 + rng.uniform(-0.6, 0.6)
        radius = rng.choice([2, 5, 10])
        answer = client.get("/v1/offers", params={
            "gtin": gtin, "lat": lat, "lon": lon, "radius_km": radius, "limit": 50, "modes": "in_store",
        })
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["location"]["source"] == "query"
        got = [(o["store"]["id"], o["store"]["distance_km"]) for o in body["offers"]]
        assert all(o["mode"] == "in_store" for o in body["offers"])
        expected = in_stock_within(catalog, gtin, lat, lon, radius)
        # Stores carrying the product in store only; the brute force keeps stores of any store mode.
        in_store = {(o.retailer_id, o.store_id) for o in catalog.offers if o.gtin == gtin and o.mode_bits & 1}
        retailer_of = {s.store_id: s.retailer_id for s in catalog.stores}
        expected = [(s, d) for s, d in expected if (retailer_of[s], s) in in_store][:50]
        assert [d for _, d in got] == sorted(d for _, d in got), "not nearest first"
        certain = [s for s, d in expected if d < radius - BOUNDARY_KM]
        assert set(certain) <= {s for s, _ in got}
        truth = dict(expected)
        for store_id, distance in got:
            if store_id in truth:
                assert abs(distance - truth[store_id]) <= max(0.001, truth[store_id] * 0.005)


def test_out_of_stock_store_is_not_offered(client: TestClient, catalog: RandomCatalog) -> None:
    out = next(o for o in catalog.offers if o.store_id and o.quantity == 0)
    store = next(s for s in catalog.stores if s.store_id == out.store_id)
    body = client.get("/v1/offers", params={"gtin": out.gtin, "lat": store.lat, "lon": store.lon,
                                            "radius_km": 1, "limit": 50}).json()
    assert out.store_id not in {o["store"]["id"] for o in body["offers"] if o["store"]}


def test_head_gives_the_headers_of_get_without_a_body(client: TestClient, catalog: RandomCatalog) -> None:
    params = {"gtin": catalog.gtins[0], "lat": 48.85, "lon": 2.35}
    got = client.get("/v1/offers", params=params)
    head = client.head("/v1/offers", params=params)
    assert head.status_code == 200, head.text
    assert head.headers["content-type"] == "application/json"
    assert int(head.headers["content-length"]) == len(got.content) > 100
    assert head.content == b""


def test_offer_carries_price_availability_and_a_signed_link(client: TestClient, catalog: RandomCatalog) -> None:
    offer = next(o for o in catalog.offers if o.store_id and o.quantity in (1, 2) and o.mode_bits & 1)
    store = next(s for s in catalog.stores if s.store_id == offer.store_id)
    body = client.get("/v1/offers", params={"gtin": offer.gtin[1:], "lat": store.lat, "lon": store.lon,
                                            "radius_km": 0.5, "modes": "in_store"}).json()
    assert body["gtin"] == offer.gtin
    mine = [o for o in body["offers"] if o["store"]["id"] == offer.store_id]
    assert len(mine) == 1
    assert mine[0]["price"] == {"amount": f"{offer.price_cents // 100}.{offer.price_cents % 100:02d}",
                                "currency": "EUR"}
    assert mine[0]["availability"] == "low_stock"
    assert mine[0]["retailer"]["id"] == offer.retailer_id
    assert mine[0]["url"].startswith("http://testserver/v1/go/")


def test_delivery_offers_appear_for_the_retailers_country(client: TestClient, catalog: RandomCatalog) -> None:
    gtin = catalog.gtins[0]
    online = {o.retailer_id for o in catalog.offers if o.gtin == gtin and not o.store_id and o.quantity > 0}
    base = {"gtin": gtin, "lat": 48.85, "lon": 2.35, "modes": "delivery"}
    in_fr = client.get("/v1/offers", params={**base, "country": "FR"}).json()["offers"]
    assert {o["retailer"]["id"] for o in in_fr} == online
    assert all(o["store"] is None and o["mode"] == "delivery" for o in in_fr)
    assert client.get("/v1/offers", params={**base, "country": "JP"}).json()["offers"] == []


def test_postal_code_locates_the_shopper(client: TestClient, catalog: RandomCatalog) -> None:
    body = client.get("/v1/offers", params={"gtin": catalog.gtins[0], "postal_code": "75001",
                                            "country": "FR"}).json()
    location = body["location"]
    assert location["source"] == "postal_code" and location["country"] == "FR"
    assert great_circle_km(location["lat"], location["lon"], 48.86, 2.34) < 5
    assert any(o["store"] for o in body["offers"])


def test_no_location_gives_source_none_and_no_store_offers(client: TestClient, catalog: RandomCatalog) -> None:
    body = client.get("/v1/offers", params={"gtin": catalog.gtins[0]}).json()
    assert body["location"]["source"] == "none"
    assert all(o["store"] is None for o in body["offers"])


def test_unknown_gtin_gets_an_empty_list(client: TestClient) -> None:
    answer = client.get("/v1/offers", params={"gtin": "3017620422003", "lat": 48.85, "lon": 2.35})
    assert answer.status_code == 200 and answer.json()["offers"] == []


@pytest.mark.parametrize(("params", "parameter"), [
    ({}, "gtin"),
    ({"gtin": "3017620422004"}, "gtin"),
    ({"gtin": "3017620422003", "lat": "north"}, "lat"),
    ({"gtin": "3017620422003", "lat": 48.8}, "lon"),
    ({"gtin": "3017620422003", "radius_km": 500}, "radius_km"),
    ({"gtin": "3017620422003", "limit": 0}, "limit"),
    ({"gtin": "3017620422003", "modes": "teleport"}, "modes"),
    ({"gtin": "3017620422003", "campaign": "nope"}, "campaign"),
    ({"gtin": "3017620422003", "postal_code": "00000", "country": "FR"}, "postal_code"),
])
def test_bad_parameter_is_named_in_a_400(client: TestClient, params: dict[str, Any], parameter: str) -> None:
    answer = client.get("/v1/offers", params=params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["parameter"] == parameter


async def test_campaign_rules_keep_only_its_retailers_and_still_the_nearest(
    db: asyncpg.Connection, catalog: RandomCatalog, settings: Settings
) -> None:
    from edge_api.campaign_store import store_campaign
    from edge_api.schemas import Campaign, Product, RetailerRules

    gtin = catalog.gtins[2]
    campaign = Campaign(id="only-r2", brand="acme", locale="fr", products=[Product(gtin=gtin[1:], label="Thing")],
                        modes=["in_store"], retailers=RetailerRules(include=["r2", "r3"], exclude=["r3"]))
    await store_campaign(db, campaign, 2.0)
    with TestClient(create_app(settings)) as client:
        body = client.get("/v1/offers", params={"gtin": gtin, "campaign": "only-r2", "lat": 48.85, "lon": 2.35,
                                                "radius_km": 30, "limit": 10}).json()
    retailer_of = {s.store_id: s.retailer_id for s in catalog.stores}
    in_store = {o.store_id for o in catalog.offers if o.gtin == gtin and o.mode_bits & 1 and o.retailer_id == "r2"}
    expected = [(s, d) for s, d in in_stock_within(catalog, gtin, 48.85, 2.35, 30) if s in in_store][:10]
    got = [(o["store"]["id"], o["store"]["distance_km"]) for o in body["offers"]]
    assert {o["retailer"]["id"] for o in body["offers"]} == {"r2"}
    assert {o["mode"] for o in body["offers"]} == {"in_store"}
    assert [s for s, _ in got] == [s for s, _ in expected]
    assert all(retailer_of[s] == "r2" for s, _ in got)


async def test_zone_retailer_delivers_only_inside_its_zone(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, catalog: RandomCatalog, settings: Settings
) -> None:
    gtin = catalog.gtins[0]
    zoned = next(o.retailer_id for o in catalog.offers if o.gtin == gtin and not o.store_id and o.quantity > 0)
    paris = {"type": "Polygon", "coordinates": [[[2.2, 48.8], [2.5, 48.8], [2.5, 48.95], [2.2, 48.95], [2.2, 48.8]]]}
    await db.execute("UPDATE retailers SET delivery_zones = $2::jsonb WHERE retailer_id = $1", zoned,
                     json.dumps(paris))
    await build_index(db, redis, keys, grace_s=0)
    with TestClient(create_app(settings)) as client:
        def delivering(lat: float, lon: float) -> set[str]:
            offers = client.get("/v1/offers", params={"gtin": gtin, "lat": lat, "lon": lon, "country": "FR",
                                                      "modes": "delivery"}).json()["offers"]
            return {o["retailer"]["id"] for o in offers}

        assert zoned in delivering(48.86, 2.35)
        assert zoned not in delivering(45.76, 4.84)  # Lyon
        assert delivering(45.76, 4.84), "retailers delivering by country still deliver outside the zone"


def _front_hits(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("nearcart_offers_front_hits_total "):
            return float(line.split()[1])
    raise AssertionError("no front-cache counter in /metrics")


def test_repeated_request_is_replayed_whole_with_its_cors_headers(
    db: asyncpg.Connection, catalog: RandomCatalog, settings: Settings
) -> None:
    params = {"gtin": catalog.gtins[0], "lat": 48.85, "lon": 2.35, "country": "FR"}
    with TestClient(create_app(settings)) as client:
        # Answers cached before the change feed is followed are retired when it starts: wait for it.
        wait_until(lambda: client.app_state["edge"].index.changes_live)
        before = _front_hits(client)
        first = client.get("/v1/offers", params=params, headers={"Origin": "https://brand.example"})
        second = client.get("/v1/offers", params=params, headers={"Origin": "https://brand.example"})
        assert _front_hits(client) == before + 1
    assert second.content == first.content
    assert second.headers == first.headers


def test_answers_located_by_ip_are_not_shared_between_shoppers(
    catalog: RandomCatalog, settings: Settings
) -> None:
    trusting = msgspec.structs.replace(settings, trusted_proxies=("127.0.0.1/32",))
    with TestClient(create_app(trusting), client=("127.0.0.1", 5000)) as client:
        def located(ip: str) -> dict[str, Any]:
            answer = client.get("/v1/offers", params={"gtin": catalog.gtins[0]}, headers={"X-Forwarded-For": ip})
            return dict(answer.json()["location"])

        british, american = located("81.2.69.160"), located("8.8.8.8")
        assert british["country"] == "GB"
        assert american["country"] != "GB"


def test_an_answer_located_by_ip_does_not_say_postal_code_for_the_same_spot(
    catalog: RandomCatalog, settings: Settings
) -> None:
    # Postal code centroids and GeoIP towns can be the very same point: the answers still differ
    # in how the shopper was located, so neither may be served for the other.
    geoip = GeoIP()
    ip = "90.73.140.65"
    place = geoip.lookup(ip)
    assert place is not None and place.postal_code
    by_code = lookup_postal_code(place.postal_code, "FR")
    assert by_code is not None and (by_code.lat, by_code.lon) == (place.lat, place.lon)
    trusting = msgspec.structs.replace(settings, trusted_proxies=("127.0.0.1/32",))
    with TestClient(create_app(trusting), client=("127.0.0.1", 5000)) as client:
        gtin = catalog.gtins[0]
        for _ in range(2):
            coded = client.get("/v1/offers", params={"gtin": gtin, "postal_code": place.postal_code})
            located = client.get("/v1/offers", params={"gtin": gtin}, headers={"X-Forwarded-For": ip})
            assert coded.json()["location"]["source"] == "postal_code"
            assert located.json()["location"]["source"] == "ip"


async def test_stock_change_retires_cached_answers_at_once(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, catalog: RandomCatalog, settings: Settings
) -> None:
    offer = next(o for o in catalog.offers if o.store_id and o.quantity > 3 and o.mode_bits & 1)
    store = next(s for s in catalog.stores if s.store_id == offer.store_id)
    params = {"gtin": offer.gtin, "lat": store.lat, "lon": store.lon, "radius_km": 0.3, "modes": "in_store",
              "country": "FR"}
    retailer_num = await db.fetchval("SELECT num FROM retailers WHERE retailer_id = $1", offer.retailer_id)
    store_num = await db.fetchval("SELECT num FROM stores WHERE store_id = $1", offer.store_id)
    before = OfferState(offer.price_cents, "EUR", offer.quantity, offer.mode_bits)
    after = before._replace(price_cents=offer.price_cents + 1)

    def prices(client: TestClient) -> list[str]:
        body = client.get("/v1/offers", params=params).json()
        return [o["price"]["amount"] for o in body["offers"] if o["store"]["id"] == offer.store_id]

    with TestClient(create_app(settings)) as client:
        wait_until(lambda: client.app_state["edge"].index.changes_live)
        assert prices(client) == [f"{before.price_cents / 100:.2f}"]
        assert prices(client) == [f"{before.price_cents / 100:.2f}"]  # now from the caches
        await apply_offer_changes(redis, keys, [
            OfferChange(offer.gtin, retailer_num, store_num, store.lat, store.lon, before, after),
        ])
        # Cached answers live 30 s, but the change announcement retires them within moments.
        wait_until(lambda: prices(client) == [f"{after.price_cents / 100:.2f}"], timeout_s=2.0)


async def test_delivery_price_change_reaches_shoppers_anywhere_at_once(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, catalog: RandomCatalog, settings: Settings
) -> None:
    # Delivery offers are read once per product and shared by every position: a change must still
    # show at once, and at positions never asked before.
    offer = next(o for o in catalog.offers if not o.store_id and o.quantity > 3)
    retailer_num = await db.fetchval("SELECT num FROM retailers WHERE retailer_id = $1", offer.retailer_id)
    before = OfferState(offer.price_cents, "EUR", offer.quantity, offer.mode_bits)
    after = before._replace(price_cents=offer.price_cents + 7)

    def prices(client: TestClient, lat: float) -> list[str]:
        body = client.get("/v1/offers", params={"gtin": offer.gtin, "lat": lat, "lon": 2.35, "country": "FR"}).json()
        return [o["price"]["amount"] for o in body["offers"]
                if o["mode"] == "delivery" and o["retailer"]["id"] == offer.retailer_id]

    with TestClient(create_app(settings)) as client:
        wait_until(lambda: client.app_state["edge"].index.changes_live)
        assert prices(client, 48.80) == prices(client, 48.81) == [f"{before.price_cents / 100:.2f}"]
        await apply_offer_changes(redis, keys, [
            OfferChange(offer.gtin, retailer_num, None, None, None, before, after),
        ])
        wait_until(lambda: prices(client, 48.82) == [f"{after.price_cents / 100:.2f}"], timeout_s=2.0)
        assert prices(client, 48.83) == prices(client, 48.80) == [f"{after.price_cents / 100:.2f}"]


def wait_until(check: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


async def _concurrent_answers(settings: Settings, requests: list[tuple[bytes, list[tuple[bytes, bytes]]]],
                              gone: frozenset[int] = frozenset()) -> list[bytes]:
    """Bodies of requests (query string, extra headers) sent at once to one worker, as uvicorn would pass them.

    The requests numbered in `gone` are cancelled once all have started (their clients went away); the
    bodies of the others are returned.
    """
    front = create_app(settings)
    starlette = front.app  # type: ignore[attr-defined]
    async with starlette.router.lifespan_context(starlette) as state:

        async def one(query: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                     "scheme": "http", "path": "/v1/offers", "raw_path": b"/v1/offers", "query_string": query,
                     "root_path": "", "headers": [(b"host", b"edge.test"), *headers],
                     "client": ("127.0.0.1", 5000), "server": ("edge.test", 80), "state": dict(state)}
            sent: list[dict[str, Any]] = []

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            await front(scope, receive, send)
            assert sent[0]["status"] == 200
            return bytes(sent[1]["body"])

        tasks = [asyncio.ensure_future(one(query, headers)) for query, headers in requests]
        await asyncio.sleep(0)  # every request has started: the first computes, the others wait for it
        for number in gone:
            tasks[number].cancel()
        return list(await asyncio.gather(*(task for number, task in enumerate(tasks) if number not in gone)))


def _computed_answers() -> float:
    return REGISTRY.get_sample_value("nearcart_offers_micro_cache_total", {"result": "miss"}) or 0.0


async def test_identical_requests_at_once_are_computed_once(catalog: RandomCatalog, settings: Settings) -> None:
    query = f"gtin={catalog.gtins[0]}&lat=48.8512&lon=2.3456".encode()
    misses = _computed_answers()
    bodies = await _concurrent_answers(settings, [(query, [])] * 20)
    assert _computed_answers() == misses + 1  # one read of Redis for the twenty
    assert len(set(bodies)) == 1 and json.loads(bodies[0])["offers"]


async def test_identical_requests_whose_clients_leave_do_not_hold_up_the_others(
    catalog: RandomCatalog, settings: Settings
) -> None:
    query = f"gtin={catalog.gtins[0]}&lat=48.8611&lon=2.3312".encode()
    misses = _computed_answers()
    bodies = await _concurrent_answers(settings, [(query, [])] * 10, gone=frozenset({1, 4, 5}))
    assert _computed_answers() == misses + 1
    assert len(bodies) == 7 and len(set(bodies)) == 1 and json.loads(bodies[0])["offers"]


async def test_requests_at_once_located_by_ip_each_get_their_own_place(
    catalog: RandomCatalog, settings: Settings
) -> None:
    trusting = msgspec.structs.replace(settings, trusted_proxies=("127.0.0.1/32",))
    query = f"gtin={catalog.gtins[0]}".encode()
    bodies = await _concurrent_answers(trusting, [(query, [(b"x-forwarded-for", b"81.2.69.160")]),
                                                     (query, [(b"x-forwarded-for", b"8.8.8.8")])])
    british, american = (json.loads(body)["location"] for body in bodies)
    assert british["country"] == "GB" and american["country"] != "GB"


def test_signed_links_kept_stay_bounded_and_still_lead_to_the_retailer(
    client: TestClient, catalog: RandomCatalog, settings: Settings
) -> None:
    from edge_api.tokens import verify_click

    links = client.app_state["edge"].ranker.links
    links.kept = 40
    biggest = 0
    for gtin in catalog.gtins:
        body = client.get("/v1/offers", params={"gtin": gtin, "lat": 48.85, "lon": 2.35, "radius_km": 10}).json()
        biggest = max(biggest, len(body["offers"]))
        # Groups (one product, one minute) are dropped whole, the one in use last.
        assert links.count <= 40 + biggest
        for offer in body["offers"]:
            target = verify_click(settings, offer["url"].rsplit("/", 1)[1])
            assert (target.retailer_id, target.gtin) == (offer["retailer"]["id"], gtin)
    assert biggest > 0


async def test_a_pushed_campaign_retires_its_cached_answers_within_seconds(
    db: asyncpg.Connection, catalog: RandomCatalog, settings: Settings
) -> None:
    # Cached answers live minutes while the change feed is followed; campaign rules must not wait that long.
    from edge_api.campaign_store import store_campaign
    from edge_api.schemas import Campaign
    from tests.edge_api.test_campaigns import campaign

    gtin = catalog.gtins[0]
    await store_campaign(db, Campaign(**campaign(modes=["in_store"], retailers={})), 2.0)
    params = {"gtin": gtin, "campaign": "spring", "lat": 48.85, "lon": 2.35, "radius_km": 10}

    def retailers(client: TestClient) -> set[str]:
        return {o["retailer"]["id"] for o in client.get("/v1/offers", params=params).json()["offers"]}

    with TestClient(create_app(settings)) as client:
        wait_until(lambda: client.app_state["edge"].index.changes_live)
        first = retailers(client)
        hits = _front_hits(client)
        assert retailers(client) == first and _front_hits(client) == hits + 1  # kept, and served from the front
        dropped = sorted(first)[0]
        await store_campaign(db, Campaign(**campaign(modes=["in_store"], retailers={"exclude": [dropped]})), 2.0)
        started = time.monotonic()
        wait_until(lambda: dropped not in retailers(client), timeout_s=10.0)
        assert time.monotonic() - started < 10.0
        assert retailers(client) == first - {dropped}
