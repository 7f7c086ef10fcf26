"""How a worker's garbage collector runs: small pauses often rather than long ones at random.

Three things set the p99 under load before this:
- full collections walked every tracked object of the worker, caches included, for
  10-40 ms every second or two;
- start-up objects (the directory, postal data, code) were walked by them too;
- young collections were triggered by CPython's count of allocations minus deallocations,
  and a full cache frees an old entry for each new one, so that count stayed low while
  the youngest generation filled up with new entries: when a collection finally came it
  walked 5,000-55,000 objects (25-90 ms).
"""

from __future__ import annotations

import asyncio
import gc

# Middle-generation collections between two full ones (CPython's default is 10).
FULL_COLLECTION_EVERY = 1000
# How often the young generations are collected whatever the allocation count says.
YOUNG_COLLECTION_INTERVAL_S = 0.1


def settle_for_serving() -> None:
    """Freeze what start-up loaded (it lives as long as the worker) and make full collections rare."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


async def collect_young_forever(interval_s: float = YOUNG_COLLECTION_INTERVAL_S) -> None:
    """Collect the two young generations on a clock: each pause walks only what 0.1 s created."""
    while True:
        await asyncio.sleep(interval_s)
        gc.collect(1)
