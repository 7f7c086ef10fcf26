"""The click-token codec: what it signs comes back intact, and only its one spelling of a token is accepted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from edge_api.settings import Settings, SettingsError, load_settings
from edge_api.tokens import ISSUE_STEP_S, ClickTarget, TokenError, sign_click, verify_click

SETTINGS = Settings(secret="codec-test-secret-at-least-32-bytes")
NOW = 1_800_000_000
PROPERTY = hypothesis_settings(max_examples=300, deadline=None, database=None,
                               suppress_health_check=[HealthCheck.too_slow])
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Characters outside the alphabet that base64.urlsafe_b64decode skips.
JUNK = [" ", "\n", "\t", "!", "*", "~", "%", "."]

texts = st.text(max_size=40)
targets = st.builds(ClickTarget, texts, texts, texts, texts,
                    st.integers(min_value=NOW - SETTINGS.click_token_ttl_s + 1, max_value=NOW))


def signed_payload(payload: bytes, secret: str = SETTINGS.secret) -> str:
    """A token around any payload, signed with the real key: what only a key holder could make."""
    mac = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return ".".join(base64.urlsafe_b64encode(part).rstrip(b"=").decode() for part in (payload, mac))


def lenient_b64(text: str) -> bytes:
    bare = text.rstrip("=")
    return base64.urlsafe_b64decode(bare + "=" * (-sum(c in B64URL for c in bare) % 4))


def fields(token: str) -> list[object]:
    body = token.split(".")[0]
    decoded: list[object] = msgspec.msgpack.decode(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return decoded


def refused(token: str, now: float = NOW) -> bool:
    try:
        verify_click(SETTINGS, token, now=now)
    except TokenError as exc:
        return not exc.expired
    return False


@PROPERTY
@given(targets)
def test_every_signed_target_comes_back_as_it_was_signed(target: ClickTarget) -> None:
    assert verify_click(SETTINGS, sign_click(SETTINGS, target), now=NOW) == target


@PROPERTY
@given(targets, st.integers(min_value=0), st.text(min_size=0, max_size=4), st.integers(min_value=0, max_value=4))
def test_any_other_string_than_the_signed_token_is_refused(
    target: ClickTarget, at: int, insert: str, cut: int
) -> None:
    token = sign_click(SETTINGS, target)
    at %= len(token) + 1
    spelling = token[:at] + insert + token[at + cut:]
    assume(spelling != token)
    assert refused(spelling)


@PROPERTY
@given(targets, st.sampled_from(["body", "signature"]), st.data())
def test_another_spelling_of_the_same_bytes_is_refused(target: ClickTarget, part: str, data: st.DataObject) -> None:
    token = sign_click(SETTINGS, target)
    body, signature = token.split(".")
    original = body if part == "body" else signature
    how = data.draw(st.sampled_from(["junk", "padding", "low bits"]))
    if how == "junk":
        at = data.draw(st.integers(min_value=0, max_value=len(original)))
        text = original[:at] + data.draw(st.sampled_from(JUNK)) + original[at:]
    elif how == "padding":
        text = original + "=" * data.draw(st.integers(min_value=1, max_value=3))
    else:
        unused_bits = {2: 4, 3: 2}.get(len(original) % 4, 0)
        assume(unused_bits)
        flipped = B64URL.index(original[-1]) ^ data.draw(st.integers(min_value=1, max_value=(1 << unused_bits) - 1))
        text = original[:-1] + B64URL[flipped]
    # What Python's lenient decoder makes of it: the very bytes of the genuine token.
    assert lenient_b64(text) == lenient_b64(original)
    assert refused(f"{text}.{signature}" if part == "body" else f"{body}.{text}")


def test_a_payload_with_an_extra_field_signed_with_the_real_key_is_refused() -> None:
    genuine = sign_click(SETTINGS, ClickTarget("shop", "s1", "03017620422003", "spring", NOW))
    assert verify_click(SETTINGS, signed_payload(msgspec.msgpack.encode(fields(genuine))), now=NOW)
    assert refused(signed_payload(msgspec.msgpack.encode([*fields(genuine), "https://evil.example/"])))
    assert refused(signed_payload(msgspec.msgpack.encode([*fields(genuine), {"to": "evil"}])))


def test_a_payload_spelled_otherwise_in_msgpack_is_refused_though_signed() -> None:
    values = fields(sign_click(SETTINGS, ClickTarget("shop", "s1", "03017620422003", "", NOW)))
    canonical = msgspec.msgpack.encode(values)
    # The same array with issued_at as a uint64 (0xcf) rather than a uint32 (0xce) and "shop" as str8 (0xd9).
    wide_int = canonical.replace(b"\xce" + NOW.to_bytes(4, "big"), b"\xcf" + NOW.to_bytes(8, "big"))
    str8 = canonical.replace(b"\xa4shop", b"\xd9\x04shop")
    assert wide_int != canonical and str8 != canonical
    assert msgspec.msgpack.decode(wide_int) == msgspec.msgpack.decode(str8) == values
    assert refused(signed_payload(wide_int)) and refused(signed_payload(str8))


@pytest.mark.parametrize("change", [
    lambda v: [*v[:5], float(v[5]), v[6]],  # issued_at as a float
    lambda v: [*v[:5], str(v[5]), v[6]],  # issued_at as a numeric string
    lambda v: [True, *v[1:]],  # version as a boolean
    lambda v: [*v[:1], v[1].encode(), *v[2:]],  # retailer as bytes
    lambda v: v[:6],  # expires_at missing
    lambda v: dict(enumerate(v)),  # a map, not an array
])
def test_a_payload_with_a_field_of_another_type_is_refused_though_signed(change: object) -> None:
    values = fields(sign_click(SETTINGS, ClickTarget("shop", "s1", "03017620422003", "", NOW)))
    assert refused(signed_payload(msgspec.msgpack.encode(change(values))))  # type: ignore[operator]


def test_a_link_stamped_at_the_start_of_its_minute_lives_its_whole_lifetime() -> None:
    ttl = 600
    settings = msgspec.structs.replace(SETTINGS, click_token_ttl_s=ttl)
    minute = NOW // 60 * 60
    # Handed out at the minute's last second, stamped with its first (as edge_api/rank.py does).
    handed_out = minute + ISSUE_STEP_S - 1
    token = sign_click(settings, ClickTarget("shop", "s1", "03017620422003", "", minute))
    assert verify_click(settings, token, now=handed_out + ttl - 1).issued_at == minute
    with pytest.raises(TokenError) as caught:
        verify_click(settings, token, now=minute + ISSUE_STEP_S + ttl)
    assert caught.value.expired


def test_a_link_lifetime_shorter_than_answers_are_cached_is_refused_at_startup() -> None:
    with pytest.raises(SettingsError, match="NEARCART_CLICK_TOKEN_TTL_S"):
        load_settings(environ={"NEARCART_CLICK_TOKEN_TTL_S": "30"})
    with pytest.raises(SettingsError, match="NEARCART_MICRO_CACHE_LIVE_TTL_S"):
        load_settings(environ={"NEARCART_CLICK_TOKEN_TTL_S": "600", "NEARCART_MICRO_CACHE_LIVE_TTL_S": "900"})
    assert load_settings(environ={"NEARCART_CLICK_TOKEN_TTL_S": "360"}).click_token_ttl_s == 360


def test_a_token_signed_now_is_accepted_now() -> None:
    # The real clock, once: the codec's `now` parameter is what the tests above move.
    assert verify_click(SETTINGS, sign_click(SETTINGS, ClickTarget("shop", "", "1", "", int(time.time()))))
