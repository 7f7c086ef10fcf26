"""Signed click tokens: what an offer link carries to `/v1/go/{token}`.

A token is `base64url(msgpack payload) "." base64url(HMAC-SHA256(payload))`,
so the server needs no storage to trust a click: retailer, store, GTIN,
campaign, issue time and expiry are all in the token, and any change to them
breaks the signature. Verification also accepts `previous_secret`, so
`NEARCART_SECRET` can be rotated without breaking links already published.

Only the canonical spelling of a token leads anywhere: base64 with junk characters,
`=` padding or stray low bits in its last character, and payloads that re-encode
differently (extra fields, wider integers), are refused even when correctly signed.
One link, one string, so no two strings count or cache as the same click.
"""

from __future__ import annotations

import binascii
import functools
import hmac
import time

import msgspec

from edge_api import b64url
from edge_api.settings import Settings

TOKEN_VERSION = 1
# Room for clocks of several edge servers that disagree a little.
CLOCK_SKEW_S = 300
MAX_TOKEN_LENGTH = 1024
# Offer links are stamped with the start of their minute (edge_api/rank.py signs them once a
# minute): a link signed at 12:00:59 carries 12:00:00. Its expiry counts from the end of that
# minute, so every link lives at least `click_token_ttl_s` from when it was actually handed out.
ISSUE_STEP_S = 60


class ClickTarget(msgspec.Struct, frozen=True, gc=False):
    """Where a click leads: one offer of one retailer (store_id "" for delivery), for one campaign (or "").

    The offer's price rides along for statistics (the purchase-intent value of a click is the
    price the shopper saw); -1 and "" in links signed before it did.
    """

    retailer_id: str
    store_id: str
    gtin: str
    campaign: str
    issued_at: int
    price_cents: int = -1
    currency: str = ""


class _Payload(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    version: int
    retailer_id: str
    store_id: str
    gtin: str
    campaign: str
    issued_at: int
    expires_at: int
    # Last, with defaults: links signed before prices rode along hold only the seven fields above, and a
    # link without a price is still written that way (`_encode`), so both spellings stay canonical.
    price_cents: int = -1
    currency: str = ""


class TokenError(Exception):
    """A token that must not lead anywhere; `expired` tells a stale link from a forged one."""

    def __init__(self, reason: str, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Payload)


@functools.lru_cache(maxsize=4)
def _keyed(secret: str) -> hmac.HMAC:
    return hmac.new(secret.encode("utf-8"), digestmod="sha256")


def _mac(secret: str, payload: bytes) -> bytes:
    # HMAC-SHA256 from a state already keyed with this secret: copying it skips hashing the key
    # pads per token (1.1 us a link here, against 2.7 us for hmac.digest with hashlib.sha256).
    mac = _keyed(secret).copy()
    mac.update(payload)
    return mac.digest()


_UNPRICED_FIELDS = 7


def _encode(payload: _Payload) -> bytes:
    """The one msgpack spelling of a payload: without its price fields when it has no price."""
    if payload.price_cents == -1 and not payload.currency:
        # An array_like Struct always writes every field (msgspec's omit_defaults does not trim arrays).
        return _encoder.encode(msgspec.structs.astuple(payload)[:_UNPRICED_FIELDS])
    return _encoder.encode(payload)


def sign_click(settings: Settings, target: ClickTarget) -> str:
    payload = _encode(
        _Payload(
            version=TOKEN_VERSION,
            retailer_id=target.retailer_id,
            store_id=target.store_id,
            gtin=target.gtin,
            campaign=target.campaign,
            issued_at=target.issued_at,
            expires_at=target.issued_at + ISSUE_STEP_S + settings.click_token_ttl_s,
            price_cents=target.price_cents,
            currency=target.currency,
        )
    )
    return f"{b64url.encode(payload)}.{b64url.encode(_mac(settings.secret, payload))}"


def verify_click(settings: Settings, token: str, now: float | None = None) -> ClickTarget:
    """The target of a genuine, unexpired token; `TokenError` for anything else."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise TokenError("malformed token")
    body, signature = token.split(".")
    try:
        # Strictly: see edge_api/b64url.py for the other spellings a lenient decoder would take.
        payload = b64url.decode(body)
        mac = b64url.decode(signature)
    except (binascii.Error, ValueError) as exc:
        raise TokenError("malformed token") from exc
    secrets = [s for s in (settings.secret, settings.previous_secret) if s]
    # compare_digest on every secret: the time taken does not tell which one matched.
    if not any([hmac.compare_digest(mac, _mac(secret, payload)) for secret in secrets]):
        raise TokenError("bad signature")
    try:
        decoded = _decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise TokenError("unreadable token") from exc
    # Signed by us means encoded by us: any other msgpack spelling of the same fields (an int in a
    # wider format, a longer string header) was made by someone holding the key, not by sign_click.
    if _encode(decoded) != payload:
        raise TokenError("non-canonical payload")
    if decoded.version != TOKEN_VERSION:
        raise TokenError("unknown token version")
    now = time.time() if now is None else now
    if decoded.issued_at > now + CLOCK_SKEW_S:
        raise TokenError("token issued in the future")
    if now >= decoded.expires_at:
        raise TokenError("token expired", expired=True)
    return ClickTarget(decoded.retailer_id, decoded.store_id, decoded.gtin, decoded.campaign, decoded.issued_at,
                       decoded.price_cents, decoded.currency)


def click_url(base_url: str, token: str) -> str:
    """The public link of a click: `<base>/v1/go/<token>` (tokens are URL-safe as they are)."""
    return f"{base_url.rstrip('/')}/v1/go/{token}"
