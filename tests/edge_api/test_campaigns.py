from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from edge_api.app import create_app
from edge_api.campaign_store import CampaignStore, store_campaign
from edge_api.cli import main
from edge_api.schemas import Campaign
from edge_api.settings import Settings

BRAND_SITE = "https://brand.example"


def campaign(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "spring",
        "brand": "acme",
        "locale": "fr",
        "products": [{"gtin": "3017620422003", "label": "Jar 400 g", "image_url": "https://img.example/jar.png"}],
        "modes": ["in_store", "delivery"],
        "retailers": {"priority": ["shop"]},
        "theme": {"primary_color": "#123456"},
        "allowed_origins": [BRAND_SITE],
        "tracking": {"utm_source": "nearcart", "utm_campaign": "spring"},
        "fallback_links": [{"label": "Shop online", "url": "https://shop.example/jar"}],
    }
    body.update(changes)
    return body


def write(tmp_path: Path, body: object) -> Path:
    path = tmp_path / "campaign.json"
    path.write_text(json.dumps(body))
    return path


def test_valid_campaign_passes_validation(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["campaign", "validate", str(write(tmp_path, campaign()))])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_validate_names_every_error_by_json_path(tmp_path: Path) -> None:
    broken = campaign(
        locale="French",
        products=[{"gtin": "3017620422003", "label": "ok"}, {"gtin": "3017620422004", "label": ""}, {"label": "x"}],
        theme={"primary_color": "blue", "shadow": True},
        tracking={"source": "nearcart"},
    )
    del broken["brand"]
    result = CliRunner().invoke(main, ["campaign", "validate", str(write(tmp_path, broken))])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    for path in ("$.brand", "$.locale", "$.products[1].label", "$.products[2].gtin", "$.theme.primary_color",
                 "$.theme.shadow", "$.tracking"):
        assert any(line.startswith(path + ":") for line in lines), (path, result.output)


def test_validate_checks_gtin_check_digits(tmp_path: Path) -> None:
    broken = campaign(products=[{"gtin": "3017620422004", "label": "Jar"}])
    result = CliRunner().invoke(main, ["campaign", "validate", str(write(tmp_path, broken))])
    assert result.exit_code == 1
    assert "$.products[0].gtin: " in result.output and "check digit" in result.output


def test_validate_reports_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "campaign.json"
    path.write_text("{ not json")
    result = CliRunner().invoke(main, ["campaign", "validate", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith("$: not JSON")


def test_validate_missing_file_exits_2(tmp_path: Path) -> None:
    assert CliRunner().invoke(main, ["campaign", "validate", str(tmp_path / "nope.json")]).exit_code == 2


@pytest.fixture
def pushed(tmp_path: Path, settings: Settings, db: asyncpg.Connection) -> Iterator[TestClient]:
    env = {"NEARCART_DATABASE_URL": settings.database_url}
    result = CliRunner().invoke(main, ["campaign", "push", str(write(tmp_path, campaign()))], env=env)
    assert result.exit_code == 0, result.output
    with TestClient(create_app(settings)) as client:
        yield client


def test_pushed_campaign_is_served_without_its_private_parts(pushed: TestClient) -> None:
    response = pushed.get("/v1/campaigns/spring")
    assert response.status_code == 200
    body = response.json()
    assert body["products"][0]["gtin"] == "3017620422003"
    assert body["theme"]["primary_color"] == "#123456"
    assert body["locale"] == "fr" and body["modes"] == ["in_store", "delivery"]
    assert body["retailers"]["priority"] == ["shop"]
    assert "tracking" not in body and "allowed_origins" not in body
    assert "max-age" in response.headers["cache-control"]


def test_unchanged_campaign_answers_304_to_its_etag(pushed: TestClient) -> None:
    etag = pushed.get("/v1/campaigns/spring").headers["etag"]
    again = pushed.get("/v1/campaigns/spring", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert pushed.get("/v1/campaigns/spring", headers={"If-None-Match": '"other"'}).status_code == 200


def test_pushing_a_changed_campaign_changes_its_etag(tmp_path: Path, settings: Settings, pushed: TestClient) -> None:
    before = pushed.get("/v1/campaigns/spring").headers["etag"]
    env = {"NEARCART_DATABASE_URL": settings.database_url}
    changed = write(tmp_path, campaign(locale="en"))
    assert CliRunner().invoke(main, ["campaign", "push", str(changed)], env=env).exit_code == 0
    with TestClient(create_app(settings)) as fresh:
        assert fresh.get("/v1/campaigns/spring").headers["etag"] != before


def test_invalid_campaign_is_not_pushed(tmp_path: Path, settings: Settings, db: asyncpg.Connection) -> None:
    env = {"NEARCART_DATABASE_URL": settings.database_url}
    result = CliRunner().invoke(main, ["campaign", "push", str(write(tmp_path, campaign(locale=1)))], env=env)
    assert result.exit_code == 1
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/campaigns/spring").status_code == 404


def test_unknown_and_malformed_campaign_ids(pushed: TestClient) -> None:
    missing = pushed.get("/v1/campaigns/autumn")
    assert missing.status_code == 404 and missing.json()["error"]["parameter"] == "id"
    bad = pushed.get("/v1/campaigns/%20spring")
    assert bad.status_code == 400 and bad.json()["error"]["parameter"] == "id"


def test_cors_is_answered_for_the_campaigns_origins_only(pushed: TestClient) -> None:
    allowed = pushed.get("/v1/campaigns/spring", headers={"Origin": BRAND_SITE})
    assert allowed.headers["access-control-allow-origin"] == BRAND_SITE
    other = pushed.get("/v1/campaigns/spring", headers={"Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in other.headers


def test_preflight_for_offers_follows_the_named_campaign(pushed: TestClient) -> None:
    preflight = {"Access-Control-Request-Method": "GET"}
    ok = pushed.options("/v1/offers?gtin=3017620422003&campaign=spring", headers={"Origin": BRAND_SITE, **preflight})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == BRAND_SITE
    refused = pushed.options(
        "/v1/offers?gtin=3017620422003&campaign=spring", headers={"Origin": "https://elsewhere.example", **preflight}
    )
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers


def test_beacons_are_allowed_from_any_campaigns_origin(pushed: TestClient) -> None:
    headers = {"Origin": BRAND_SITE, "Access-Control-Request-Method": "POST"}
    assert pushed.options("/v1/events", headers=headers).status_code == 204
    headers["Origin"] = "https://elsewhere.example"
    assert pushed.options("/v1/events", headers=headers).status_code == 403


async def test_a_known_campaign_is_served_while_postgresql_is_slow_or_gone(settings: Settings,
                                                                           db: asyncpg.Connection) -> None:
    await store_campaign(db, Campaign(**campaign()), 2.0)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    store = CampaignStore(pool, timeout_s=2.0, ttl_s=0.05)
    try:
        first = await store.get("spring")
        assert first is not None and first.campaign.theme.primary_color == "#123456"
        # Changed in PostgreSQL: past the TTL the kept copy still answers at once, and the
        # refresh it started brings the change in shortly after.
        await store_campaign(db, Campaign(**campaign(theme={"primary_color": "#abcdef"})), 2.0)
        await asyncio.sleep(0.06)
        stale = await store.get("spring")
        assert stale is not None and stale.campaign.theme.primary_color == "#123456"
        for _ in range(100):
            fresh = await store.get("spring")
            if fresh is not None and fresh.campaign.theme.primary_color == "#abcdef":
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the refreshed campaign never showed")
    finally:
        await pool.close()
    # PostgreSQL gone (the pool closed): the campaign already known keeps answering.
    await asyncio.sleep(0.06)
    kept = await store.get("spring")
    assert kept is not None and kept.campaign.theme.primary_color == "#abcdef"
    # One never seen cannot be answered without PostgreSQL.
    with pytest.raises(asyncpg.InterfaceError):
        await store.get("autumn")


async def test_concurrent_first_reads_of_a_campaign_share_one_query(settings: Settings,
                                                                    db: asyncpg.Connection) -> None:
    await store_campaign(db, Campaign(**campaign()), 2.0)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    store = CampaignStore(pool, timeout_s=2.0)
    try:
        found = await asyncio.gather(*(store.get("spring") for _ in range(20)))
    finally:
        await pool.close()
    assert len({id(f) for f in found}) == 1  # one object: one read
