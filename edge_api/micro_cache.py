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

import random
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")
# Share of the maximum age by which an entry's life may be cut short, at random.
LIFE_SPREAD = 0.25


# The admission filter: a Bloom filter of this many bits (1 MB), three per key, and how many keys it
# remembers, per entry kept, before it starts afresh. In front of a full 40,000-entry cache it let 10
# of 160,000 one-off positions in as if seen before; one byte per key in the same memory let 7 % in,
# each an eviction and a 7 KB answer stored for nothing (tests/edge_api/test_micro_cache.py).
DOOR_BITS = 1 << 23
DOOR_MEMORY = 4


class MicroCache(Generic[V]):
    """Least recently used entries go first: a campaign's hot places stay while its long tail churns.

    (Dropping the oldest half by insertion order, as before, evicted the hottest answers too: on the
    benchmark's shoppers' locality that meant about 18 % misses instead of 10 %.) Each entry lives
    a random 75-100 % of the caller's `max_age_s`, so answers cached in the same second (a
    campaign launch, a restart) do not all expire in the same second either.

    Once full, a new key gets in only on its second sight (a "doorkeeper" in front of the LRU, as
    in TinyLFU): a query asked once, like every one of a stream of unique positions, would only
    push out an answer that is asked again, and costs an eviction to store.
    """

    def __init__(self, max_entries: int = 5_000) -> None:
        self.max_entries = max_entries
        # key -> (stamp, when stored, share of max_age_s it may live, value)
        self._entries: OrderedDict[Hashable, tuple[Hashable, float, float, V]] = OrderedDict()
        # Keys seen once lately, by hash (a collision only lets a key in early).
        self._door = bytearray(DOOR_BITS // 8)
        self._door_marks = 0

    def get(self, key: Hashable, stamp: Hashable, max_age_s: float) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != stamp or time.monotonic() - entry[1] > max_age_s * entry[2]:
            return None
        self._entries.move_to_end(key)
        return entry[3]

    def lookup(self, key: Hashable, max_age_s: float) -> tuple[Hashable, V] | None:
        """(stamp, value) of a young enough entry, for callers that learn the stamp from the value."""
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[1] > max_age_s * entry[2]:
            return None
        self._entries.move_to_end(key)
        return entry[0], entry[3]

    def get_stale(self, key: Hashable, max_age_s: float) -> V | None:
        found = self.lookup(key, max_age_s)
        return None if found is None else found[1]

    def put(self, key: Hashable, stamp: Hashable, value: V) -> None:
        """Keep `value` if there is room, the key is in already, or it was offered lately."""
        if len(self._entries) >= self.max_entries and key not in self._entries and not self._seen_before(key):
            return  # marked: its next offer gets in
        entries = self._entries
        entries.pop(key, None)
        while len(entries) >= self.max_entries:
            entries.popitem(last=False)
        entries[key] = (stamp, time.monotonic(), 1.0 - LIFE_SPREAD * random.random(), value)

    def _seen_before(self, key: Hashable) -> bool:
        """Whether `key` was offered lately; marks it if not."""
        h = hash(key)
        door = self._door
        # Three bit positions from one 64-bit hash (23 bits each, the third mixing high and low bits).
        a = h & (DOOR_BITS - 1)
        b = (h >> 23) & (DOOR_BITS - 1)
        c = ((h >> 46) ^ (h >> 7)) & (DOOR_BITS - 1)
        if door[a >> 3] & (1 << (a & 7)) and door[b >> 3] & (1 << (b & 7)) and door[c >> 3] & (1 << (c & 7)):
            return True
        door[a >> 3] |= 1 << (a & 7)
        door[b >> 3] |= 1 << (b & 7)
        door[c >> 3] |= 1 << (c & 7)
        self._door_marks += 1
        if self._door_marks > DOOR_MEMORY * self.max_entries:
            self._door = bytearray(DOOR_BITS // 8)
            self._door_marks = 0
        return False
