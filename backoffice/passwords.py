"""Passwords: argon2id hashes (argon2-cffi's defaults, RFC 9106's second choice: 64 MiB, 3 passes).

Hashing is CPU and memory heavy on purpose, so it runs in a thread (never on the event
loop) and at most `HASHING_AT_ONCE` at a time per worker: a flood of logins queues
instead of allocating 64 MiB per request.
"""

from __future__ import annotations

import asyncio
import functools
import weakref

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 1024
HASHING_AT_ONCE = 2
_hasher = PasswordHasher()
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = weakref.WeakKeyDictionary()


class PasswordError(ValueError):
    """A new password nearcart refuses; the message says why."""


def check_new_password(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"password must have at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with other parameters than today's (rehash it at the next login)."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


@functools.cache
def dummy_hash() -> str:
    """Verified when the email is unknown, so an unknown email costs what a wrong password costs.

    Made at the first login rather than at import: a worker that never sees one never pays for it.
    """
    return _hasher.hash("nearcart: no such person")


def _hashing_limiter() -> anyio.CapacityLimiter:
    # One per event loop: a limiter belongs to the loop that first uses it (tests run several loops).
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = anyio.CapacityLimiter(HASHING_AT_ONCE)
    return limiter


async def verify_async(stored_hash: str, password: str) -> bool:
    return await anyio.to_thread.run_sync(verify, stored_hash, password, limiter=_hashing_limiter())


async def hash_async(password: str) -> str:
    return await anyio.to_thread.run_sync(hash_password, password, limiter=_hashing_limiter())
