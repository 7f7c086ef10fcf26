"""schemathesis over every operation `/openapi.json` lists, admin ones included, counted per operation.

Each operation gets `--examples` generated requests (admin ones with a valid admin JWT, so they
get past authentication), sent to the app in-process through ASGI, on scratch Redis and
PostgreSQL seeded with a retailer, a store, offers, a campaign and a live index. Every answer is
checked: no 5xx, status code, content type, headers and body as documented.

    python -m loadtest.schemathesis_trial --examples 1000

prints `| operation | examples | statuses | failures |` and the distinct failures, and exits 1 if
any. tests/edge_api/test_openapi.py runs the same trial at 100 examples per operation.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from edge_api.settings import Settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
GTIN = "03017620422003"


@dataclass
class Tried:
    """What one operation got: examples sent, their statuses, and each distinct failure with its count."""

    operation: str
    examples: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    # Each failure's first example: the request (as curl) and what was wrong.
    first: dict[str, str] = field(default_factory=dict)


def admin_headers(settings: Settings, lifetime_s: int = 3600) -> dict[str, str]:
    claims = {"sub": "schemathesis@example.com", "role": "admin", "exp": int(time.time()) + lifetime_s}
    return {"Authorization": "Bearer " + jwt.encode(claims, settings.effective_jwt_secret, algorithm="HS256")}


def try_operations(schema: Any, examples: int, headers: dict[str, str]) -> list[Tried]:
    """Every operation of `schema`, `examples` cases each; failures are counted, not raised, so all run."""
    found: list[Tried] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        tried = Tried(f"{operation.method.upper()} {operation.path}")
        found.append(tried)
        _trial(operation, tried, examples, headers)()
    return found


def _trial(operation: Any, tried: Tried, examples: int, headers: dict[str, str]) -> Callable[[], None]:
    # The admin token overrides any Authorization schemathesis made up: the operation's own code runs.
    sent = headers if operation.path.startswith("/admin/") else None

    @given(case=operation.as_strategy())
    @hypothesis_settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck),
                         database=None, phases=[Phase.explicit, Phase.generate])
    def check(case: Any) -> None:
        tried.examples += 1
        response = case.call(headers=sent)
        tried.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as exc:  # each check failure is a finding: count, go on
            for failure in getattr(exc, "exceptions", (exc,)):
                title = f"{getattr(failure, 'title', type(failure).__name__)}: {response.status_code}"
                tried.failures[title] += 1
                tried.first.setdefault(title, f"{case.as_curl_command()}\n    {str(failure).strip()[:400]}")

    return check


def table(found: list[Tried]) -> str:
    lines = ["| operation | examples | statuses | failures |", "|---|---:|---|---:|"]
    for tried in found:
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(tried.statuses.items()))
        lines.append(f"| {tried.operation} | {tried.examples} | {statuses} | {sum(tried.failures.values())} |")
    for tried in found:
        for failure, n in tried.failures.most_common():
            lines.append(f"\n{tried.operation} ({n}x) {failure}\n    {tried.first[failure]}")
    return "\n".join(lines)


async def seed(settings: Settings) -> None:
    """A retailer with a store, store and delivery offers, a campaign and a live index: real code paths."""
    import msgspec

    from cache.index import build_index
    from cache.keys import Keys
    from edge_api.campaign_store import store_campaign
    from edge_api.schemas import Campaign
    from loadtest.stack import migrated_catalog

    async with migrated_catalog(settings) as (conn, redis):
        await conn.execute(
            "INSERT INTO retailers (retailer_id, name, cart_url_template, delivery_countries) VALUES"
            " ('shop', 'Shop', 'https://www.shop.example/cart?ean={gtin}&store={store_id}&qty={qty}', '{FR}')"
        )
        await conn.execute("INSERT INTO stores (retailer_id, store_id, name, country, lat, lon) VALUES"
                           " ('shop', 's1', 'Shop Opéra', 'FR', 48.87, 2.33)")
        await conn.execute(
            "INSERT INTO offers (retailer_id, store_id, gtin, price, currency, quantity, modes, updated_at) VALUES"
            f" ('shop', 's1', '{GTIN}', 2.99, 'EUR', 4, 3, now()), ('shop', '', '{GTIN}', 3.49, 'EUR', 9, 4, now())"
        )
        demo = {"id": "demo", "brand": "acme", "locale": "fr", "products": [{"gtin": GTIN, "label": "Jar"}]}
        await store_campaign(conn, msgspec.convert(demo, Campaign), settings.database_timeout_s)
        await build_index(conn, redis, Keys(settings.redis_prefix), grace_s=0)


def run(settings: Settings, examples: int) -> list[Tried]:
    """The trial on `settings`' (seeded) catalog, the app in-process, its lifespan stopped at the end."""
    from schemathesis.python.asgi import shutdown_lifespans

    from edge_api.app import create_app

    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    try:
        return try_operations(schema, examples, admin_headers(settings))
    finally:
        shutdown_lifespans()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1000, help="generated requests per operation (1,000)")
    args = parser.parse_args()
    from loadtest.stack import scratch_settings

    # A JWT key of the length RFC 7518 asks for HS256 (pyjwt warns on every token below it).
    with scratch_settings(aggregate_events=False, jwt_secret="schemathesis-trial-" + "k" * 32) as settings:
        asyncio.run(seed(settings))
        started = time.perf_counter()
        found = run(settings, args.examples)
        elapsed = time.perf_counter() - started
    print(table(found))
    failures = sum(sum(t.failures.values()) for t in found)
    print(f"\n{len(found)} operations, {sum(t.examples for t in found)} examples in {elapsed:.0f} s;"
          f" failures: {failures}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
