"""Stopping background tasks that talk to Redis."""

from __future__ import annotations

import asyncio


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel until it ends: redis-py can swallow a cancel that lands inside its read timeout."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)
