"""Whether a whole index is live: the version pointer and the completion marker of that version.

A rebuild writes every key of a new version, then its marker (`Keys.complete`: the version and
what it holds), then the pointer (`Keys.version`). A reader serves a version only while both are
there: a Redis restarted empty, a failover to a replica that never had the index, or keys lost
half-way all read as "missing", never as "this product is sold nowhere".
"""

from __future__ import annotations

from typing import cast

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from cache.keys import Keys


class IndexMissing(RedisError):
    """No whole index to answer from: for a caller, the same as Redis being unreachable (503 or a kept answer)."""


class IndexMarker(msgspec.Struct, array_like=True, frozen=True):
    """What one build wrote: counts an SRE can compare with the catalog (`/readyz`, logs)."""

    version: int
    gtins: int
    store_offers: int
    delivery_offers: int
    # Unix time the build finished.
    built_at: float


encode_marker = msgspec.msgpack.Encoder().encode
_marker_decoder = msgspec.msgpack.Decoder(IndexMarker)


def decode_marker(raw: bytes | None) -> IndexMarker | None:
    """A stored marker, or None when absent or unreadable (then the version does not count as whole)."""
    if raw is None:
        return None
    try:
        return _marker_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


async def live_index(redis: aioredis.Redis, keys: Keys) -> IndexMarker | None:
    """The marker of the live version, or None when no whole index is live (missing or incomplete)."""
    raw_version = await redis.get(keys.version)
    if raw_version is None:
        return None
    marker = decode_marker(cast(bytes | None, await redis.get(keys.complete(int(raw_version)))))
    return marker if marker is not None and marker.version == int(raw_version) else None
