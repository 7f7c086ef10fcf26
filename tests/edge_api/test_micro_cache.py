"""The per-worker answer cache: exact while its stamp holds, and it keeps what shoppers keep asking for."""

from __future__ import annotations

import random
import time

from edge_api.micro_cache import MicroCache


def test_an_answer_is_served_only_under_the_stamp_it_was_computed_from_and_while_young() -> None:
    cache: MicroCache[bytes] = MicroCache(10)
    cache.put("paris", (1, 0), b"answer")
    assert cache.get("paris", (1, 0), max_age_s=60) == b"answer"
    assert cache.get("paris", (1, 1), max_age_s=60) is None  # the product's offers changed since
    time.sleep(0.02)
    assert cache.get("paris", (1, 0), max_age_s=0.01) is None
    assert cache.get_stale("paris", max_age_s=60) == b"answer"  # what Redis-down answers may still use


def test_a_hot_answer_survives_a_long_tail_of_one_off_queries() -> None:
    cache: MicroCache[str] = MicroCache(100)
    cache.put("hot", 0, "hot answer")
    for i in range(1000):
        cache.put(f"tail-{i}", 0, "rare answer")
        assert cache.get("hot", 0, max_age_s=60) == "hot answer", f"evicted after {i} one-off queries"
    assert cache.get("tail-98", 0, max_age_s=60) == "rare answer"  # stored while there was room
    assert cache.get("tail-999", 0, max_age_s=60) is None  # asked once, once the cache was full


def test_the_least_recently_used_answer_makes_room() -> None:
    cache: MicroCache[str] = MicroCache(3)
    for key in ("a", "b", "c"):
        cache.put(key, 0, key)
    assert cache.get("a", 0, max_age_s=60) == "a"
    cache.put("d", 0, "d")
    cache.put("d", 0, "d")  # second sight: admitted, evicting "b", the least recently used
    assert [cache.get(key, 0, max_age_s=60) for key in "abcd"] == ["a", None, "c", "d"]


def test_once_full_an_answer_gets_in_on_its_second_sight_only() -> None:
    cache: MicroCache[str] = MicroCache(3)
    for key in ("a", "b", "c"):
        cache.put(key, 0, key)  # room to spare: stored at once
    for i in range(500):
        cache.put(f"one-off-{i}", 0, "rare")  # a stream of unique positions
    assert [cache.get(key, 0, max_age_s=60) for key in ("a", "b", "c")] == ["a", "b", "c"]
    assert cache.get("one-off-499", 0, max_age_s=60) is None
    cache.put("one-off-499", 0, "asked again")
    assert cache.get("one-off-499", 0, max_age_s=60) == "asked again"
    assert sum(cache.get(key, 0, max_age_s=60) is not None for key in ("a", "b", "c")) == 2


def test_a_full_cache_of_production_size_lets_almost_no_one_off_query_in() -> None:
    # 40,000 entries (the default); its admission filter remembers 160,000 keys before starting afresh.
    cache: MicroCache[int] = MicroCache(40_000)
    for i in range(40_000):
        cache.put(("kept", i), 0, i)
    shoppers = random.Random(7)
    one_offs = [("3017620422003", round(shoppers.uniform(42, 51), 6), round(shoppers.uniform(-4, 8), 6), "FR")
                for _ in range(150_000)]  # unique positions, each asked once
    admitted = 0
    for key in one_offs:
        cache.put(key, 0, 1)
        admitted += cache.get(key, 0, max_age_s=60) is not None
    assert admitted < len(one_offs) // 100, f"{admitted} one-off answers stored, each evicting one asked again"
    cache.put(one_offs[-1], 0, 2)  # its second sight
    assert cache.get(one_offs[-1], 0, max_age_s=60) == 2


def test_answers_cached_together_do_not_all_expire_together() -> None:
    cache: MicroCache[int] = MicroCache(1000)
    for i in range(200):
        cache.put(i, 0, i)
    time.sleep(0.87)  # each lives 75-100 % of max_age_s: about half are gone by now
    alive = sum(cache.get(i, 0, max_age_s=1.0) is not None for i in range(200))
    assert 0 < alive < 200
    assert all(cache.get(i, 0, max_age_s=10.0) == i for i in range(200))  # none beyond its stamp's age limit
