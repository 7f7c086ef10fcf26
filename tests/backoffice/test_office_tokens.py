"""API tokens from the back office: minted for a role, shown once, accepted in scope, refused once revoked."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import jwt
from office_site import ACME, ADMIN, csrf_of, logged_in
from starlette.testclient import TestClient

from edge_api.auth import RevokedTokens
from edge_api.settings import Settings
from tests.conftest import TEST_SECRET
from tests.edge_api.test_admin import token as signed

_MINTED = re.compile(r'<textarea id="minted-token" readonly rows="4">([^<]+)</textarea>')


def _mint(client: TestClient, csrf: str, role: str, label: str = "ci", days: str = "30") -> str:
    answer = client.post("/admin/tokens", data={"csrf": csrf, "role": role, "label": label, "days": days})
    assert answer.status_code == 200, answer.text
    match = _MINTED.search(answer.text)
    assert match is not None
    return match.group(1)


async def test_a_minted_token_works_in_its_role_and_is_shown_once(client: TestClient, db: asyncpg.Connection) -> None:
    csrf = logged_in(client, ADMIN)
    token = _mint(client, csrf, "brand:acme", label="acme reporting")
    claims = jwt.decode(token, TEST_SECRET, algorithms=["HS256"])
    assert claims["role"] == "brand:acme" and claims["sub"] == "acme reporting"
    assert 29 * 86400 < claims["exp"] - claims["iat"] <= 30 * 86400
    row = await db.fetchrow("SELECT role, label, created_by, revoked_at FROM api_tokens WHERE jti = $1", claims["jti"])
    assert dict(row) == {"role": "brand:acme", "label": "acme reporting", "created_by": ADMIN, "revoked_at": None}
    headers = {"Authorization": f"Bearer {token}"}
    listed = client.get("/admin/v1/campaigns", headers=headers).json()
    assert sorted(c["id"] for c in listed["campaigns"]) == ["autumn", "spring"]
    page = client.get("/admin/tokens").text
    assert "acme reporting" in page and token not in page


async def test_a_revoked_token_is_refused(client: TestClient, db: asyncpg.Connection) -> None:
    csrf = logged_in(client, ADMIN)
    token = _mint(client, csrf, "admin", label="old robot")
    jti = jwt.decode(token, TEST_SECRET, algorithms=["HS256"])["jti"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/admin/v1/campaigns", headers=headers).status_code == 200
    stale = client.post(f"/admin/tokens/{jti}/revoke", data={"csrf": "nope"})
    assert stale.status_code == 403
    assert client.get("/admin/v1/campaigns", headers=headers).status_code == 200
    answer = client.post(f"/admin/tokens/{jti}/revoke", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    refused = client.get("/admin/v1/campaigns", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "token has been revoked"
    assert await db.fetchval("SELECT revoked_by FROM api_tokens WHERE jti = $1", jti) == ADMIN
    assert "Token old robot revoked." in client.get(answer.headers["location"]).text
    # A token signed by hand, with no jti, is not affected.
    assert client.get("/admin/v1/campaigns", headers={"Authorization": f"Bearer {signed('admin')}"}).status_code == 200


async def test_another_worker_sees_a_revocation_once_its_cache_entry_expires(
    client: TestClient, settings: Settings
) -> None:
    csrf = logged_in(client, ADMIN)
    jti = jwt.decode(_mint(client, csrf, "admin"), TEST_SECRET, algorithms=["HS256"])["jti"]
    other_worker = RevokedTokens(ttl_s=0.3)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        assert not await other_worker.is_revoked(pool, jti, 2.0)
        client.post(f"/admin/tokens/{jti}/revoke", data={"csrf": csrf})
        # Still its cached answer, then PostgreSQL's once the entry is older than ttl_s.
        assert not await other_worker.is_revoked(pool, jti, 2.0)
        await asyncio.sleep(0.35)
        assert await other_worker.is_revoked(pool, jti, 2.0)
    finally:
        await pool.close()


def test_only_admins_see_tokens(client: TestClient) -> None:
    csrf = logged_in(client, ACME)
    assert client.get("/admin/tokens").status_code == 404
    minted = client.post("/admin/tokens", data={"csrf": csrf, "role": "admin", "label": "x", "days": "1"})
    assert minted.status_code == 404
    assert "/admin/tokens" not in client.get("/admin/").text


async def test_a_bad_mint_form_names_each_problem(client: TestClient, db: asyncpg.Connection) -> None:
    csrf = logged_in(client, ADMIN)
    answer = client.post("/admin/tokens", data={"csrf": csrf, "role": "brand:acme corp", "label": "", "days": "999"})
    assert answer.status_code == 422
    assert "role &#39;brand:acme corp&#39; must be &#39;admin&#39;" in answer.text
    assert "label must have 1 to 100 printable characters" in answer.text
    assert "days must be a whole number from 1 to 365" in answer.text
    assert await db.fetchval("SELECT count(*) FROM api_tokens") == 0
    assert csrf_of(answer.text) == csrf


def test_a_role_with_a_trailing_newline_is_no_admin(client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {signed('admin' + chr(10))}"}
    assert client.get("/admin/v1/campaigns", headers=headers).status_code == 401
