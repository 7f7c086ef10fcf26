"""Ten thousand mutants of real click tokens: none redirects, none gets a 5xx (loadtest/token_mutation.py runs more)."""

from __future__ import annotations

import asyncpg
import msgspec
import redis.asyncio as aioredis

from cache.directory import refresh_directory
from cache.keys import Keys
from edge_api.app import create_app
from edge_api.settings import Settings
from loadtest.token_mutation import RETAILER, forbidden, genuine_tokens, in_process, table, trial

MUTANTS = 10_000


async def test_ten_thousand_mutated_click_tokens_never_redirect_nor_fail(
    settings: Settings, db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys
) -> None:
    await db.execute("INSERT INTO retailers (retailer_id, name, cart_url_template) VALUES ($1, $2, $3)", *RETAILER)
    await refresh_directory(db, redis, keys)
    settings = msgspec.structs.replace(settings, aggregate_events=False)
    genuine = genuine_tokens(settings)
    async with in_process(create_app(settings)) as client:
        counts = await trial(client, genuine, settings.secret, MUTANTS)
    print(table(counts))
    # The harness sees a redirect when there is one: every genuine link gets its 302.
    assert counts["genuine", 302] == len(genuine)
    assert sum(n for (kind, _), n in counts.items() if kind != "genuine") == MUTANTS
    assert forbidden(counts) == {}
    # Every kind of mutation was tried, and refused as a bad link (400), or as no route (404) when it grew a "/".
    assert {kind for kind, _ in counts} >= {"bit flip", "junk", "padding", "low bits", "re-signed variant", "several"}
    assert {status for kind, status in counts if kind != "genuine"} <= {400, 404, 410}
