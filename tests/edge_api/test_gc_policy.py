"""The worker's collector walks only what the last tick created, whatever CPython's allocation count says."""

from __future__ import annotations

import asyncio
import gc

from edge_api.gc_policy import collect_young_forever


async def test_new_long_lived_entries_leave_the_young_generation_on_a_clock() -> None:
    # A full cache frees an old entry for each new one: CPython's count stays flat and would never
    # trigger a young collection while the new entries pile up in the youngest generation.
    gc.disable()
    try:
        kept = [[i] for i in range(5000)]  # tracked, long-lived, like new cache entries
        young_ids = {id(o) for o in gc.get_objects(0)}
        assert sum(id(entry) in young_ids for entry in kept) == len(kept)
        task = asyncio.create_task(collect_young_forever(interval_s=0.01))
        await asyncio.sleep(0.05)
        task.cancel()
        young_ids = {id(o) for o in gc.get_objects(0)}
        assert not any(id(entry) in young_ids for entry in kept)
    finally:
        gc.enable()
