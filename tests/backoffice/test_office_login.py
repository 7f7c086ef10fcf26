"""Logging in and out of the back office: cookies, CSRF, equal failures, rate limits, session lifetime."""

from __future__ import annotations

import time
from collections.abc import Iterator

import asyncpg
import msgspec
import pytest
import redis.asyncio as aioredis
from argon2 import PasswordHasher
from office_site import ACME, ADMIN, PASSWORD, csrf_of, log_in, logged_in
from starlette.testclient import TestClient

from backoffice.keys import OfficeKeys
from backoffice.login import FAILURE_FLOOR_S
from backoffice.throttle import ACCOUNT_LIMIT, NETWORK_LIMIT, LoginThrottle
from backoffice.users import find_user, remove_user, set_password
from edge_api.app import create_app
from edge_api.settings import Settings


def _cookie_header(answer: object, name: str) -> str:
    headers = answer.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    found = [h for h in headers if h.startswith(name + "=")]
    assert found, f"no {name} cookie set: {headers}"
    return str(found[0])


def test_session_cookie_is_httponly_strict_and_scoped_to_admin(client: TestClient) -> None:
    answer = log_in(client, ADMIN)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/"
    attributes = [part.strip() for part in _cookie_header(answer, "nc_admin").lower().split(";")]
    assert {"httponly", "samesite=strict", "path=/admin"} <= set(attributes)
    # Plain http on loopback: a Secure cookie would never come back.
    assert "secure" not in attributes
    assert client.get("/admin/", follow_redirects=False).status_code == 200


def test_session_cookie_is_secure_off_loopback(settings: Settings, people: None) -> None:
    with TestClient(create_app(settings), base_url="https://office.nearcart.example") as client:
        answer = log_in(client, ADMIN)
        assert answer.status_code == 303
        attributes = [part.strip().lower() for part in _cookie_header(answer, "nc_admin").split(";")]
        assert "secure" in attributes
        assert client.get("/admin/", follow_redirects=False).status_code == 200


def test_shoppers_get_no_cookie(client: TestClient) -> None:
    for path in ("/v1/campaigns/spring", "/healthz", "/openapi.json"):
        assert "set-cookie" not in client.get(path).headers, path


async def test_session_id_is_stored_only_hashed(client: TestClient, redis: aioredis.Redis, settings: Settings) -> None:
    log_in(client, ADMIN)
    session_id = client.cookies.get("nc_admin")
    assert session_id and len(session_id) >= 43
    names = [key.decode() async for key in redis.scan_iter(match=settings.redis_prefix + "bo:s:*")]
    assert len(names) == 1
    assert session_id not in names[0]
    assert await redis.exists(OfficeKeys(settings.redis_prefix).session(session_id))


def test_wrong_password_and_unknown_email_answer_alike(client: TestClient) -> None:
    answers, durations = [], []
    for email, password in ((ADMIN, "not the password"), ("nobody@example.com", PASSWORD)):
        started = time.monotonic()
        answers.append(log_in(client, email, password))
        durations.append(time.monotonic() - started)
    wrong, unknown = answers
    assert wrong.status_code == unknown.status_code == 403
    assert "Wrong email or password." in wrong.text and "Wrong email or password." in unknown.text
    # The same page but for the email typed back into its field.
    assert wrong.text.replace(ADMIN, "x") == unknown.text.replace("nobody@example.com", "x")
    assert all(duration >= FAILURE_FLOOR_S for duration in durations)
    assert "nc_admin=" not in " ".join(wrong.headers.get_list("set-cookie"))


def test_login_form_without_its_token_is_refused(client: TestClient) -> None:
    client.get("/admin/login")
    answer = client.post("/admin/login", data={"email": ADMIN, "password": PASSWORD}, follow_redirects=False)
    assert answer.status_code == 403
    assert "This form has expired" in answer.text
    assert client.get("/admin/", follow_redirects=False).status_code == 303


def test_login_token_from_another_browser_is_refused(settings: Settings, people: None) -> None:
    app = create_app(settings)
    with TestClient(app, base_url="http://127.0.0.1") as theirs, TestClient(app, base_url="http://127.0.0.1") as ours:
        their_token = csrf_of(theirs.get("/admin/login").text)
        ours.get("/admin/login")
        answer = ours.post(
            "/admin/login", data={"csrf": their_token, "email": ADMIN, "password": PASSWORD}, follow_redirects=False
        )
        assert answer.status_code == 403


def test_too_many_failures_lock_the_account_even_with_the_right_password(client: TestClient) -> None:
    for _ in range(ACCOUNT_LIMIT):
        assert log_in(client, ACME, "guess " * 3).status_code == 403
    locked = log_in(client, ACME)
    assert locked.status_code == 429
    assert "Too many failed attempts" in locked.text
    assert int(locked.headers["retry-after"]) > 0
    # Another account from the same place still gets in.
    assert log_in(client, ADMIN).status_code == 303


async def test_too_many_failures_from_one_network_lock_it_out(
    settings: Settings, people: None, redis: aioredis.Redis
) -> None:
    # The failures themselves go through the throttle directly (each through HTTP costs an argon2 check; the
    # account test above counts them through HTTP).
    throttle = LoginThrottle(redis, OfficeKeys(settings.redis_prefix))
    for n in range(NETWORK_LIMIT):
        await throttle.failed(f"person{n}@example.com", "203.0.113.0")
    app = create_app(settings)
    # Another address of the same /24 is refused, even for a real account with its password...
    with TestClient(app, base_url="http://127.0.0.1", client=("203.0.113.99", 40000)) as neighbour:
        locked = log_in(neighbour, ADMIN)
        assert locked.status_code == 429
        assert "Too many failed attempts" in locked.text
        assert "nc_admin=" not in " ".join(locked.headers.get_list("set-cookie"))
    # ...while another network is not.
    with TestClient(app, base_url="http://127.0.0.1", client=("198.51.100.1", 40000)) as elsewhere:
        assert log_in(elsewhere, ADMIN).status_code == 303


def test_success_clears_the_account_count(client: TestClient) -> None:
    for _ in range(ACCOUNT_LIMIT - 1):
        log_in(client, ACME, "not it at all")
    assert log_in(client, ACME).status_code == 303
    client.cookies.clear()
    # One more failure would lock the account had the success not cleared the count.
    log_in(client, ACME, "not it at all")
    assert log_in(client, ACME).status_code == 303


def test_pages_send_a_stranger_to_the_login_form(client: TestClient) -> None:
    for path in ("/admin/", "/admin/campaigns/spring", "/admin/tokens", "/admin/logout"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == "/admin/login"


def test_logout_needs_the_session_token_then_ends_the_session(client: TestClient) -> None:
    csrf = logged_in(client, ADMIN)
    session_id = client.cookies.get("nc_admin")
    refused = client.post("/admin/logout", data={"csrf": "stale"}, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/admin/", follow_redirects=False).status_code == 200
    answer = client.post("/admin/logout", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/admin/login")
    # The old cookie, replayed, opens nothing.
    client.cookies.set("nc_admin", session_id or "", domain="127.0.0.1", path="/admin")
    assert client.get("/admin/", follow_redirects=False).status_code == 303


@pytest.fixture
def short_sessions(settings: Settings, people: None) -> Iterator[TestClient]:
    quick = msgspec.structs.replace(settings, session_idle_s=1)
    with TestClient(create_app(quick), base_url="http://127.0.0.1") as client:
        yield client


def test_idle_session_expires(short_sessions: TestClient) -> None:
    logged_in(short_sessions, ADMIN)
    assert short_sessions.get("/admin/", follow_redirects=False).status_code == 200
    time.sleep(1.5)
    assert short_sessions.get("/admin/", follow_redirects=False).status_code == 303


async def test_each_request_pushes_the_idle_expiry_back(
    client: TestClient, redis: aioredis.Redis, settings: Settings
) -> None:
    logged_in(client, ADMIN)
    key = OfficeKeys(settings.redis_prefix).session(client.cookies.get("nc_admin") or "")
    await redis.expire(key, 5)
    client.get("/admin/")
    assert await redis.ttl(key) > settings.session_idle_s - 5


async def test_new_password_ends_open_sessions(client: TestClient, db: asyncpg.Connection) -> None:
    logged_in(client, ACME)
    await set_password(db, ACME, "another long password")
    assert client.get("/admin/", follow_redirects=False).status_code == 303
    assert log_in(client, ACME, "another long password").status_code == 303


async def test_removed_person_is_logged_out(client: TestClient, db: asyncpg.Connection) -> None:
    logged_in(client, ACME)
    assert await remove_user(db, ACME)
    assert client.get("/admin/", follow_redirects=False).status_code == 303
    assert log_in(client, ACME).status_code == 403


async def test_old_hash_parameters_are_upgraded_at_login(client: TestClient, db: asyncpg.Connection) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    await db.execute("UPDATE users SET password_hash = $2 WHERE email = $1", ACME, weak)
    assert log_in(client, ACME).status_code == 303
    user = await find_user(db, ACME)
    assert user is not None and user.password_hash != weak
    assert user.password_hash.startswith("$argon2id$") and "m=65536" in user.password_hash
    client.cookies.clear()
    assert log_in(client, ACME).status_code == 303


def test_language_follows_the_browser_then_the_switch(client: TestClient) -> None:
    assert "Se connecter" in client.get("/admin/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"}).text
    assert "Sign in" in client.get("/admin/login", headers={"Accept-Language": "de, en;q=0.5"}).text
    logged_in(client, ADMIN)
    assert '<html lang="fr">' in client.get("/admin/", headers={"Accept-Language": "fr"}).text
    client.get("/admin/?lang=en", headers={"Accept-Language": "fr"})
    # Remembered in the session: the browser still asks for French.
    page = client.get("/admin/", headers={"Accept-Language": "fr"}).text
    assert '<html lang="en">' in page and "Dashboard" in page
    assert "Tableau de bord" in client.get("/admin/?lang=fr").text


def test_pages_are_private_and_unframeable(client: TestClient) -> None:
    logged_in(client, ADMIN)
    answer = client.get("/admin/")
    assert answer.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"


async def test_a_role_edited_into_nonsense_grants_nothing(client: TestClient, db: asyncpg.Connection) -> None:
    logged_in(client, ACME)
    await db.execute("UPDATE users SET role = 'brand:acme\n' WHERE email = $1", ACME)
    assert client.get("/admin/", follow_redirects=False).status_code == 303
    assert client.get("/admin/campaigns/spring", follow_redirects=False).status_code == 303


def test_static_files_are_served_by_the_app_and_the_script_stays_small(client: TestClient) -> None:
    css = client.get("/admin/static/admin.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    script = client.get("/admin/static/admin.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    # Progressive enhancement only: a few KB at most, and no cookie for anyone fetching it.
    assert len(script.content) < 4096
    assert "set-cookie" not in script.headers
