"""A per-worker cache of offers answers, tied to what they were computed from.

A campaign launch or a TV spot sends thousands of shoppers to the same product
from the same few places; they get the same bytes. Each entry carries the stamp
of the data it was computed from (index version, directory version, the GTIN's
change generation: `IndexReader.stamp`); it is served only while that stamp is
current and the entry is younger than the caller's `max_age_s` — long while the
change feed is followed, a fraction of a second when it is not. While Redis is
unreachable an older entry may still be served (`get_stale`) instead of a 503.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class MicroCache(Generic[V]):
    def __init__(self, max_entries: int = 5_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[Hashable, float, V]] = {}

    def get(self, key: Hashable, stamp: Hashable, max_age_s: float) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != stamp or time.monotonic() - entry[1] > max_age_s:
            return None
        return entry[2]

    def lookup(self, key: Hashable, max_age_s: float) -> tuple[Hashable, V] | None:
        """(stamp, value) of a young enough entry, for callers that learn the stamp from the value."""
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[1] > max_age_s:
            return None
        return entry[0], entry[2]

    def get_stale(self, key: Hashable, max_age_s: float) -> V | None:
        found = self.lookup(key, max_age_s)
        return None if found is None else found[1]

    def put(self, key: Hashable, stamp: Hashable, value: V) -> None:
        if len(self._entries) >= self.max_entries:
            # Dicts keep insertion order: dropping the oldest half is a cheap approximate LRU.
            for old in list(self._entries)[: self.max_entries // 2]:
                del self._entries[old]
        self._entries.pop(key, None)
        self._entries[key] = (stamp, time.monotonic(), value)
