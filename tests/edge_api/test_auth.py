"""Admin JWTs: exact claims, a size limit, one spelling, and a thousand forgeries that all get 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import asyncpg
import jwt
import pytest
from starlette.testclient import TestClient

from edge_api.app import create_app
from edge_api.auth import MAX_TOKEN_BYTES, AuthError, decode_token
from edge_api.settings import Settings
from tests.conftest import TEST_SECRET

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def claims(role: str = "admin", **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"sub": "ops@example.com", "role": role, "exp": int(time.time()) + 300}
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


def signed(payload: dict[str, Any], secret: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, secret, algorithm=algorithm)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed(header: dict[str, Any], payload: dict[str, Any], secret: str = TEST_SECRET) -> str:
    """A JWT assembled by hand (any header, any JSON), HMAC-SHA256 signed with `secret`."""
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    return head + "." + b64(hmac.new(secret.encode(), head.encode(), hashlib.sha256).digest())


def test_a_genuine_token_names_its_role_and_scope() -> None:
    principal = decode_token(signed(claims("brand:acme")), TEST_SECRET)
    assert (principal.role, principal.subject, principal.user) == ("brand", "acme", "ops@example.com")


@pytest.mark.parametrize(
    "role", ["admin\n", "brand:acme\n", "admin ", " admin", "Admin", "admin\x00", "brand:", "brand:acme/x"]
)
def test_a_role_that_is_not_exactly_a_known_role_is_refused(role: str) -> None:
    with pytest.raises(AuthError, match="role"):
        decode_token(signed(claims(role)), TEST_SECRET)


@pytest.mark.parametrize("exp", [str(int(time.time()) + 300), float(int(time.time()) + 300), True])
def test_an_expiry_that_is_not_an_integer_is_refused(exp: object) -> None:
    # pyjwt alone accepts the numeric string: it converts `exp` with int().
    with pytest.raises(AuthError, match=r"exp"):
        decode_token(hand_signed({"alg": "HS256", "typ": "JWT"}, claims(exp=exp)), TEST_SECRET)


@pytest.mark.parametrize("claim, value", [("sub", 42), ("sub", ["ops"]), ("role", ["admin"]), ("iat", "1"),
                                          ("nbf", "1"), ("jti", 5)])
def test_a_claim_of_another_type_is_refused(claim: str, value: object) -> None:
    with pytest.raises(AuthError):
        decode_token(hand_signed({"alg": "HS256", "typ": "JWT"}, {**claims(), claim: value}), TEST_SECRET)


def test_a_token_over_the_size_limit_is_refused_before_it_is_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    big = signed(claims(note="x" * MAX_TOKEN_BYTES))
    decoded: list[str] = []
    monkeypatch.setattr(jwt, "decode", lambda token, *args, **kwargs: decoded.append(token))
    with pytest.raises(AuthError, match=str(MAX_TOKEN_BYTES)):
        decode_token(big, TEST_SECRET)
    assert decoded == []


def test_a_token_just_under_the_size_limit_is_accepted() -> None:
    token = signed(claims(note=""))
    token = signed(claims(note="x" * ((MAX_TOKEN_BYTES - len(token)) * 3 // 4 - 4)))
    assert MAX_TOKEN_BYTES - 8 <= len(token) <= MAX_TOKEN_BYTES
    assert decode_token(token, TEST_SECRET).role == "admin"


@pytest.mark.parametrize("respell", [
    lambda t: t + "=",
    lambda t: t.replace(".", "=.", 1),
    lambda t: t[:10] + "\n" + t[10:],
    lambda t: t[:-1] + B64URL[B64URL.index(t[-1]) ^ 1],  # an unused low bit of the signature's last character
])
def test_another_spelling_of_a_genuine_token_is_refused(respell: Any) -> None:
    genuine = signed(claims())
    assert decode_token(genuine, TEST_SECRET).role == "admin"
    with pytest.raises(AuthError):
        decode_token(respell(genuine), TEST_SECRET)


# --- through the API -------------------------------------------------------------------------


@pytest.fixture
def client(settings: Settings, db: asyncpg.Connection) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_megabyte_token_gets_401_naming_the_limit(client: TestClient) -> None:
    big = signed(claims(note="x" * 1024 * 1024))
    response = client.get("/admin/v1/campaigns", headers={"Authorization": f"Bearer {big}"})
    assert response.status_code == 401
    assert str(MAX_TOKEN_BYTES) in response.json()["error"]["message"]
    assert client.get("/admin/v1/campaigns", headers={"Authorization": f"Bearer {signed(claims())}"}).status_code == 200


def forged_admin_tokens(count: int, rng: random.Random) -> Iterator[tuple[str, str]]:
    """(kind, token) of tokens that must not open the admin API: not signed by our key, or not exactly ours."""
    brand = signed(claims("brand:acme"))
    admin_payload = b64(json.dumps(claims()).encode())
    header_hs256 = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    header_none = b64(json.dumps({"alg": "none"}).encode())
    makers: list[tuple[str, Any]] = [
        ("wrong key", lambda: signed(claims(), secret=f"guess-{rng.random()}-padded-to-32-bytes!")),
        ("empty key", lambda: hand_signed({"alg": "HS256"}, claims(), secret="")),
        ("alg none", lambda: f"{header_none}.{admin_payload}."),
        ("other HMAC", lambda: signed(claims(), secret=TEST_SECRET * 2, algorithm=rng.choice(["HS384", "HS512"]))),
        ("alg RS256", lambda: hand_signed({"alg": "RS256"}, claims())),
        ("brand payload swapped", lambda: f"{header_hs256}.{admin_payload}.{brand.split('.')[2]}"),
        ("brand token flipped", lambda: flip(brand, rng)),
        ("role variant", lambda: signed(claims(rng.choice(["admin\n", "admin\r\n", " admin", "ADMIN", "admin\t",
                                                           "brand:*", "retailer:", "admin,brand:x"])))),
        ("exp variant", lambda: hand_signed({"alg": "HS256"}, claims(exp=rng.choice(
            [str(int(time.time()) + 999), int(time.time()) - 999, None, float(int(time.time()) + 999), True])))),
        ("sub variant", lambda: hand_signed({"alg": "HS256"}, claims(sub=rng.choice([None, 7, [], {"a": 1}])))),
        ("oversized", lambda: signed(claims(pad="p" * rng.randint(MAX_TOKEN_BYTES, 4 * MAX_TOKEN_BYTES)))),
        ("respelled", lambda: respell(signed(claims()), rng)),
        ("truncated", lambda: (lambda t: t[: rng.randrange(len(t) - 1)])(signed(claims()))),
    ]
    for n in range(count):
        kind, make = makers[n % len(makers)]
        yield kind, make()


def flip(token: str, rng: random.Random) -> str:
    at = rng.randrange(len(token))
    if token[at] == ".":
        at -= 1
    return token[:at] + rng.choice(B64URL.replace(token[at], "")) + token[at + 1:]


def respell(token: str, rng: random.Random) -> str:
    at = rng.randrange(1, len(token))
    return rng.choice([token + "=" * rng.randint(1, 2), token[:at] + rng.choice(" \t!*~%=") + token[at:],
                       token[:-1] + B64URL[B64URL.index(token[-1]) ^ rng.randint(1, 3)]])


def test_a_thousand_forged_or_tampered_admin_tokens_open_nothing(client: TestClient) -> None:
    rng = random.Random(14)
    statuses: Counter[tuple[str, int]] = Counter()
    for kind, token in forged_admin_tokens(1300, rng):
        statuses[kind, client.get("/admin/v1/campaigns", headers={"Authorization": f"Bearer {token}"}).status_code] += 1
    opened = {key: n for key, n in statuses.items() if key[1] != 401}
    assert sum(statuses.values()) >= 1000 and len({kind for kind, _ in statuses}) == 13
    assert opened == {}, opened
