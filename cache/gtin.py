"""GTIN (EAN/UPC) validation: GTIN-8, -12, -13 or -14 with a valid check digit, stored as 14 digits.

Feeds repeat the same few thousand GTINs across millions of store rows, so results
are memoised: the check digit is computed once per distinct code, not once per row.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

GTIN_LENGTHS = (8, 12, 13, 14)
# Bounded so a feed of ten million distinct codes cannot grow memory without limit.
_CACHE_LIMIT = 200_000
_cache: dict[str, str] = {}


class GtinError(ValueError):
    """Why a string is not a GTIN, phrased for a retailer reading an ingest report."""


def check_digit(body: str) -> int:
    """The GS1 check digit of `body` (all digits but the last): weights 3,1,3,… from the right."""
    odd = sum(map(int, body[-1::-2]))  # rightmost digit and every second one leftwards: weight 3
    even = sum(map(int, body[-2::-2]))
    return (10 - (odd * 3 + even) % 10) % 10


def normalize_gtin(raw: str) -> str:
    """The 14-digit form of a GTIN-8/12/13/14; raise `GtinError` saying what is wrong."""
    found = _cache.get(raw)
    if found is not None:
        return found
    code = raw.strip()
    if not (code.isascii() and code.isdigit()):
        raise GtinError(f"{_quote(raw)} is not a GTIN: digits only")
    if len(code) not in GTIN_LENGTHS:
        raise GtinError(f"{_quote(raw)} is not a GTIN: {len(code)} digits, expected 8, 12, 13 or 14")
    expected = check_digit(code[:-1])
    if int(code[-1]) != expected:
        raise GtinError(f"{_quote(raw)} is not a GTIN: check digit should be {expected}")
    full = code.zfill(14)
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[raw] = full
    return full


def normalized_gtins() -> Mapping[str, str]:
    """The memo of `normalize_gtin` (raw code -> 14 digits), for a hot loop to look up before calling it."""
    return _cache


def is_gtin(raw: str) -> bool:
    try:
        normalize_gtin(raw)
    except GtinError:
        return False
    return True


def _quote(raw: str) -> str:
    return msgspec.json.encode(raw[:40] + ("…" if len(raw) > 40 else "")).decode()
