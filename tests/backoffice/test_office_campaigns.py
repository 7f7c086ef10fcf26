"""Editing campaigns in the back office: scope, validation, versions, diff, restore, and the widget seeing it."""

from __future__ import annotations

import html
import json
import re
import time
from typing import Any

import asyncpg
import pytest
from office_site import ACME, ADMIN, GLOBEX, SHOP, campaign_json, csrf_of, logged_in
from starlette.testclient import TestClient

from edge_api.campaign_store import CACHE_TTL_S
from tests.edge_api.test_admin import bearer


def _save(client: TestClient, csrf: str, body: Any, campaign_id: str = "spring") -> Any:
    text = body if isinstance(body, str) else json.dumps(body, indent=2)
    return client.post(f"/admin/campaigns/{campaign_id}", data={"csrf": csrf, "json": text}, follow_redirects=False)


def _textarea(page: str) -> str:
    """The editor's text, as the browser shows it."""
    return html.unescape(page.split('name="json"')[1].split(">", 1)[1].split("</textarea>")[0])


async def _stored(db: asyncpg.Connection, campaign_id: str = "spring") -> dict[str, Any]:
    return dict(json.loads(await db.fetchval("SELECT body::text FROM campaigns WHERE id = $1", campaign_id)))


async def _versions(db: asyncpg.Connection, campaign_id: str = "spring") -> list[tuple[int, str, int | None]]:
    rows = await db.fetch(
        "SELECT version, author, restored_from FROM campaign_versions WHERE campaign_id = $1 ORDER BY version",
        campaign_id,
    )
    return [(row["version"], row["author"], row["restored_from"]) for row in rows]


def test_a_brand_lists_only_its_campaigns(client: TestClient) -> None:
    logged_in(client, ACME)
    page = client.get("/admin/").text
    assert "/admin/campaigns/spring" in page and "/admin/campaigns/autumn" in page
    assert "rival" not in page
    client.cookies.clear()
    logged_in(client, ADMIN)
    assert "/admin/campaigns/rival" in client.get("/admin/").text


def test_a_retailer_lists_no_campaign(client: TestClient) -> None:
    logged_in(client, SHOP)
    page = client.get("/admin/").text
    assert "/admin/campaigns/" not in page
    assert "Your role has no campaigns." in page


@pytest.mark.parametrize("who", [ACME, SHOP])
async def test_another_brands_campaign_answers_like_a_missing_one(
    client: TestClient, db: asyncpg.Connection, who: str
) -> None:
    csrf = logged_in(client, who)
    theirs = client.get("/admin/campaigns/rival")
    missing = client.get("/admin/campaigns/no-such-campaign")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.text == missing.text
    assert "globex" not in theirs.text
    before = await _stored(db, "rival")
    posts = [
        _save(client, csrf, campaign_json(id="rival", brand="globex", locale="en"), "rival"),
        client.post("/admin/campaigns/rival/restore", data={"csrf": csrf, "version": "1"}),
        client.get("/admin/campaigns/rival/diff?from=1&to=1"),
    ]
    assert [answer.status_code for answer in posts] == [404, 404, 404]
    assert await _stored(db, "rival") == before
    assert await _versions(db, "rival") == []


async def test_edit_with_errors_saves_nothing_and_lists_every_error(client: TestClient, db: asyncpg.Connection) -> None:
    csrf = logged_in(client, ACME)
    before = await _stored(db)
    bad = campaign_json(products=[{"gtin": "3017620422003", "label": 5}], radius_km=500, colour="red")
    answer = _save(client, csrf, bad)
    assert answer.status_code == 422
    assert "Nothing was saved: 3 error(s)." in answer.text
    for path in ("$.products[0].label", "$.radius_km", "$.colour"):
        assert f"<code>{path}</code>" in answer.text, path
    # Each error names the line it is on in the text shown again.
    shown = _textarea(answer.text).split("\n")
    expected = {"$.colour": '"colour": "red"', "$.radius_km": '"radius_km": 500', "$.products[0].label": '"label": 5'}
    for path, key in expected.items():
        line = re.search(rf'data-line="(\d+)"><code>{re.escape(path)}</code>', answer.text)
        assert line is not None and key in shown[int(line.group(1)) - 1], path
    assert await _stored(db) == before
    assert await _versions(db) == []
    # The same rules as `nearcart campaign validate`, past the shape too: a wrong check digit.
    digit = _save(client, csrf, campaign_json(products=[{"gtin": "3017620422004", "label": "Jar"}]))
    assert digit.status_code == 422 and "<code>$.products[0].gtin</code>" in digit.text
    assert await _stored(db) == before


async def test_a_nul_character_is_an_error_not_an_outage(client: TestClient, db: asyncpg.Connection) -> None:
    csrf = logged_in(client, ACME)
    before = await _stored(db)
    answer = _save(client, csrf, campaign_json(products=[{"gtin": "3017620422003", "label": "Jar\u0000"}]))
    assert answer.status_code == 422
    assert "<code>$.products[0].label</code>" in answer.text and "NUL" in answer.text
    assert await _stored(db) == before


async def test_json_that_does_not_parse_is_shown_back_with_its_line(client: TestClient, db: asyncpg.Connection) -> None:
    csrf = logged_in(client, ACME)
    text = '{\n  "id": "spring",\n  "brand": "acme"\n  "locale": "fr"\n}'
    answer = _save(client, csrf, text)
    assert answer.status_code == 422
    assert "not JSON" in answer.text and "(line 4)" in answer.text
    assert "&#34;brand&#34;: &#34;acme&#34;\n  &#34;locale&#34;" in answer.text


async def test_a_brand_cannot_give_its_campaign_away_or_rename_it(client: TestClient, db: asyncpg.Connection) -> None:
    csrf = logged_in(client, ACME)
    given = _save(client, csrf, campaign_json(brand="globex"))
    assert given.status_code == 422 and "<code>$.brand</code>" in given.text
    renamed = _save(client, csrf, campaign_json(id="summer"))
    assert renamed.status_code == 422 and "<code>$.id</code>" in renamed.text
    assert (await _stored(db))["brand"] == "acme"
    assert await db.fetchval("SELECT count(*) FROM campaigns WHERE id = 'summer'") == 0


async def test_save_without_the_session_token_is_refused(client: TestClient, db: asyncpg.Connection) -> None:
    csrf = logged_in(client, ACME)
    before = await _stored(db)
    altered = ("y" if csrf[0] == "x" else "x") + csrf[1:]
    for token in ("", altered):
        answer = _save(client, token, campaign_json(locale="en"))
        assert answer.status_code == 403
    # A token from another session of the same person is stale here too.
    with TestClient(client.app, base_url="http://127.0.0.1") as other:
        other_csrf = logged_in(other, ACME)
    assert _save(client, other_csrf, campaign_json(locale="en")).status_code == 403
    assert await _stored(db) == before
    assert await _versions(db) == []


async def test_saving_keeps_versions_with_who_and_what(client: TestClient, db: asyncpg.Connection) -> None:
    csrf = logged_in(client, ACME)
    answer = _save(client, csrf, campaign_json(locale="en"))
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/campaigns/spring?saved=2"
    assert (await _stored(db))["locale"] == "en"
    # Version 1 is the campaign as it was before its first edit here (pushed from the command line).
    assert await _versions(db) == [(1, "", None), (2, ACME, None)]
    page = client.get(answer.headers["location"]).text
    assert "Version 2 saved." in page and ACME in page and "outside the back office" in page
    unchanged = _save(client, csrf, campaign_json(locale="en"))
    assert unchanged.headers["location"] == "/admin/campaigns/spring?unchanged=1"
    assert len(await _versions(db)) == 2


async def test_diff_shows_what_changed_between_two_versions(client: TestClient, db: asyncpg.Connection) -> None:
    csrf = logged_in(client, ACME)
    _save(client, csrf, campaign_json(products=[{"gtin": "3017620422003", "label": "Jar 750 g"}]))
    page = client.get("/admin/campaigns/spring/diff?from=1&to=2")
    assert page.status_code == 200
    assert '<span class="del">-      &#34;label&#34;: &#34;Jar 400 g&#34;,</span>' in page.text
    assert '<span class="add">+      &#34;label&#34;: &#34;Jar 750 g&#34;,</span>' in page.text
    assert "--- version 1" in page.text and "+++ version 2" in page.text
    assert "identical" in client.get("/admin/campaigns/spring/diff?from=2&to=2").text
    assert client.get("/admin/campaigns/spring/diff?from=1&to=9").status_code == 404


async def test_restore_makes_a_new_version_with_the_old_content(client: TestClient, db: asyncpg.Connection) -> None:
    csrf = logged_in(client, ACME)
    original = await _stored(db)
    _save(client, csrf, campaign_json(locale="en"))
    _save(client, csrf, campaign_json(locale="de"))
    answer = client.post("/admin/campaigns/spring/restore", data={"csrf": csrf, "version": "1"}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/campaigns/spring?restored=1&as=4"
    assert await _stored(db) == original
    assert await _versions(db) == [(1, "", None), (2, ACME, None), (3, ACME, None), (4, ACME, 1)]
    assert "Version 1 restored as version 4." in client.get(answer.headers["location"]).text
    refused = client.post("/admin/campaigns/spring/restore", data={"version": "2"}, follow_redirects=False)
    assert refused.status_code == 403
    assert await _stored(db) == original


async def test_an_admin_may_move_a_campaign_to_another_brand(client: TestClient, db: asyncpg.Connection) -> None:
    csrf = logged_in(client, ADMIN)
    assert _save(client, csrf, campaign_json(brand="globex")).status_code == 303
    assert (await _stored(db))["brand"] == "globex"
    client.cookies.clear()
    logged_in(client, GLOBEX)
    assert client.get("/admin/campaigns/spring").status_code == 200


def test_the_widget_sees_an_edit_within_the_campaign_cache_lifetime(client: TestClient) -> None:
    before = client.get("/v1/campaigns/spring")
    assert before.json()["locale"] == "fr"
    csrf = logged_in(client, ACME)
    assert _save(client, csrf, campaign_json(locale="en")).status_code == 303
    saved_at = time.monotonic()
    while client.get("/v1/campaigns/spring").json()["locale"] != "en":
        assert time.monotonic() - saved_at < CACHE_TTL_S + 1.0, "the edit did not reach /v1/campaigns in time"
        time.sleep(0.2)
    assert client.get("/v1/campaigns/spring").headers["etag"] != before.headers["etag"]


async def test_the_json_api_keeps_a_version_too(client: TestClient, db: asyncpg.Connection) -> None:
    answer = client.put(
        "/admin/v1/campaigns/spring", json=campaign_json(locale="en"), headers=bearer("brand:acme", sub="ci-bot")
    )
    assert answer.status_code == 200
    assert await _versions(db) == [(1, "", None), (2, "ci-bot", None)]
    logged_in(client, ACME)
    assert "ci-bot" in client.get("/admin/campaigns/spring").text


def test_the_editor_shows_the_stored_json_in_full(client: TestClient) -> None:
    logged_in(client, ACME)
    page = client.get("/admin/campaigns/spring").text
    shown = json.loads(_textarea(page))
    assert shown["id"] == "spring" and shown["products"][0]["label"] == "Jar 400 g"
    # Defaults spelled out, so a marketer sees every field they may set.
    assert "theme" in shown and "radius_km" in shown
    assert csrf_of(page)
