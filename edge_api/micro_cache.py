"""A per-worker cache of encoded offers answers, a fraction of a second long.

A campaign launch or a TV spot sends thousands of shoppers to the same product
from the same few places within a second; they get the same bytes. Entries are
tied to the index version (a rebuild invalidates them at once) and expire after
`ttl_s`, which bounds how stale an incremental stock update can look. While Redis
is unreachable an older entry may still be served (`get_stale`) instead of a 503.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class MicroCache(Generic[V]):
    def __init__(self, ttl_s: float, max_entries: int = 20_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[int | None, float, V]] = {}

    def get(self, key: Hashable, version: int | None) -> V | None:
        if self.ttl_s <= 0:
            return None
        entry = self._entries.get(key)
        if entry is None or entry[0] != version or time.monotonic() - entry[1] > self.ttl_s:
            return None
        return entry[2]

    def get_stale(self, key: Hashable, max_age_s: float) -> V | None:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[1] > max_age_s:
            return None
        return entry[2]

    def put(self, key: Hashable, version: int | None, body: V) -> None:
        if len(self._entries) >= self.max_entries:
            # Dicts keep insertion order: dropping the oldest half is a cheap approximate LRU.
            for old in list(self._entries)[: self.max_entries // 2]:
                del self._entries[old]
        self._entries.pop(key, None)
        self._entries[key] = (version, time.monotonic(), body)
