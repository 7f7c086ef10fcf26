"""Unpadded base64url, read strictly: each byte string has one spelling, and only it is read back.

Python's decoder drops characters outside the alphabet, accepts any `=` padding and ignores
the unused low bits of the last character, so one signed token could be written many ways;
click tokens and JWTs both go through `decode` so that none of those spellings is accepted.
"""

from __future__ import annotations

import binascii
import re

_URLSAFE = bytes.maketrans(b"+/", b"-_")
_UNURLSAFE = bytes.maketrans(b"-_", b"+/")
# A length of 1 modulo 4 spells no bytes at all.
_SPELLING = re.compile(r"(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?")


def encode(data: bytes) -> str:
    # What base64.urlsafe_b64encode gives (unpadded), at half its cost: every offer link has two.
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")


def decode(text: str) -> bytes:
    """The bytes `text` spells if it is their canonical spelling (`encode(result) == text`), else ValueError."""
    if not text.isascii() or _SPELLING.fullmatch(text) is None:
        raise ValueError("not unpadded base64url")
    data = binascii.a2b_base64(text.encode("ascii").translate(_UNURLSAFE) + b"=" * (-len(text) % 4), strict_mode=True)
    if encode(data) != text:
        raise ValueError("not the canonical spelling (unused low bits set)")
    return data
