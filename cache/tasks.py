"""Stopping background tasks that talk to Redis."""

from __future__ import annotations

import asyncio
from typing import Any


async def stop_task(task: asyncio.Task[Any]) -> None:
    """Cancel until it ends: redis-py can swallow a cancel that lands inside its read timeout."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)
