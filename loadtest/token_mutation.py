"""Click-token mutation trial: mutants of real signed tokens sent to `/v1/go/`, counted by status.

An attacker who has one offer link tries every change that might still redirect: bit
flips, characters a lenient base64 decoder drops, padding, the unused low bits of the
last character, truncations, extensions, parts of two links spliced, other keys, and
payloads re-signed with the real key but spelled otherwise (extra fields, wider
integers, other types). None may redirect and none may answer 5xx. The app is driven
in-process through ASGI (no HTTP client in between), on scratch Redis and PostgreSQL:

    python -m loadtest.token_mutation --count 100000

prints `| kind | tried | 302 | 400 | ... |` and exits 1 if any mutant redirected or got a 5xx.
tests/edge_api/test_token_mutation.py runs the same mutants, 10,000 of them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import random
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any
from urllib.parse import quote, unquote

import msgspec

from edge_api.tokens import ClickTarget, sign_click

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
JUNK = " \t\n=+/!*~%.:;,é\x00"
TEMPLATE = "https://www.shop.example/cart/add?ean={gtin}&store={store_id}&qty={qty}"
RETAILER = ("shop", "Shop", TEMPLATE)
GTIN = "03017620422003"


def genuine_tokens(settings: Any, count: int = 8) -> list[str]:
    """Real links to the trial's retailer: different stores and campaigns, so payloads and lengths vary."""
    now = int(time.time())
    return [sign_click(settings, ClickTarget("shop", f"s{n}" * (n % 3), GTIN, "spring" if n % 2 else "", now))
            for n in range(count)]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(payload: bytes, secret: str) -> str:
    return f"{_b64(payload)}.{_b64(hmac.new(secret.encode(), payload, hashlib.sha256).digest())}"


def _fields(token: str) -> list[Any]:
    body = token.split(".")[0]
    fields: list[Any] = msgspec.msgpack.decode(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return fields


def _part(token: str, rng: random.Random) -> tuple[int, int]:
    """Where a random part of the token (body or signature) starts and ends (the whole of a dotless one)."""
    dot = token.find(".")
    if dot < 0:
        return 0, len(token)
    return (0, dot) if rng.random() < 0.5 else (dot + 1, len(token))


def bit_flip(token: str, rng: random.Random) -> str:
    at = rng.randrange(len(token))
    return token[:at] + chr(ord(token[at]) ^ (1 << rng.randrange(7))) + token[at + 1:]


def junk(token: str, rng: random.Random) -> str:
    at = rng.randrange(len(token) + 1)
    return token[:at] + rng.choice(JUNK) + token[at:]


def padding(token: str, rng: random.Random) -> str:
    _, end = _part(token, rng)
    return token[:end] + "=" * rng.randint(1, 3) + token[end:]


def low_bits(token: str, rng: random.Random) -> str:
    """Another spelling of the same bytes: the unused low bits of a part's last character set."""
    start, end = _part(token, rng)
    unused = {2: 4, 3: 2}.get((end - start) % 4, 0)
    if not unused or token[end - 1] not in B64URL:
        return junk(token, rng)
    last = B64URL.index(token[end - 1]) ^ rng.randint(1, (1 << unused) - 1)
    return token[:end - 1] + B64URL[last] + token[end:]


def truncation(token: str, rng: random.Random) -> str:
    at = rng.randrange(len(token))
    if rng.random() < 0.5:
        return token[:at]
    return token[:at] + token[at + rng.randint(1, 8):]


def extension(token: str, rng: random.Random) -> str:
    _, end = _part(token, rng)
    extra = "".join(rng.choice(B64URL) for _ in range(rng.randint(1, 8)))
    return token[:end] + extra + token[end:]


def case_swap(token: str, rng: random.Random) -> str:
    letters = [i for i, c in enumerate(token) if c.isalpha()]
    if not letters:
        return junk(token, rng)
    at = rng.choice(letters)
    return token[:at] + token[at].swapcase() + token[at + 1:]


STRING_MUTATIONS: list[Callable[[str, random.Random], str]] = [
    bit_flip, junk, padding, low_bits, truncation, extension, case_swap,
]


def _wider_int(payload: bytes, value: int) -> bytes:
    """The payload with `value` as a uint64 where msgpack's shortest form (uint32) was used."""
    return payload.replace(b"\xce" + value.to_bytes(4, "big"), b"\xcf" + value.to_bytes(8, "big"), 1)


def resigned(token: str, secret: str, rng: random.Random) -> str:
    """The token's fields, changed or spelled otherwise, signed with the real key."""
    fields = _fields(token)
    payload = msgspec.msgpack.encode(fields)
    choice = rng.randrange(9)
    if choice == 0:
        extra = rng.choice(["https://evil.example/", 1, None, {"to": "evil"}, [1, 2], b"x", 1.5])
        variant = msgspec.msgpack.encode([*fields, extra])
    elif choice == 1:
        variant = _wider_int(payload, fields[rng.choice([5, 6])])
    elif choice == 2:
        text = fields[rng.choice([1, 3])]
        head = bytes([0xA0 | len(text)]) + text.encode()
        variant = payload.replace(head, b"\xd9" + bytes([len(text)]) + text.encode(), 1)
    elif choice == 3:
        variant = msgspec.msgpack.encode(dict(enumerate(fields)))
    elif choice == 4:
        variant = msgspec.msgpack.encode([rng.choice([0, 2, True, "1", 1.0]), *fields[1:]])
    elif choice == 5:
        at = rng.choice([5, 6])
        retyped = rng.choice([float(fields[at]), str(fields[at])])
        variant = msgspec.msgpack.encode([*fields[:at], retyped, *fields[at + 1:]])
    elif choice == 6:
        variant = msgspec.msgpack.encode(fields[: rng.randrange(len(fields))])
    elif choice == 7:
        variant = payload + rng.choice([b"\x00", b"\xc0", b"\x91\x01"])
    else:
        at = rng.randrange(1, 5)
        variant = msgspec.msgpack.encode([*fields[:at], fields[at].encode(), *fields[at + 1:]])
    return _signed(variant, secret)


def mutants(genuine: Sequence[str], secret: str, count: int, seed: int = 14) -> Iterator[tuple[str, str]]:
    """`count` (kind, token) pairs, none of them a genuine token."""
    rng = random.Random(seed)
    real = set(genuine)
    kinds: list[tuple[str, Callable[[str, random.Random], str]]] = [
        *[(mutation.__name__.replace("_", " "), mutation) for mutation in STRING_MUTATIONS],
        ("spliced", lambda t, r: t.split(".")[0] + "." + r.choice(genuine).split(".")[1]),
        ("other key", lambda t, r: _signed(msgspec.msgpack.encode(_fields(t)), f"guessed-{r.random()}")),
        ("re-signed variant", lambda t, r: resigned(t, secret, r)),
        ("several", _several),
    ]
    made = 0
    while made < count:
        kind, mutate = kinds[made % len(kinds)]
        token = mutate(rng.choice(genuine), rng)
        if token in real:
            continue
        made += 1
        yield kind, token


def _several(token: str, rng: random.Random) -> str:
    for mutate in rng.sample(STRING_MUTATIONS, rng.randint(2, 3)):
        token = mutate(token or "x", rng)
    return token


class InProcess:
    """The ASGI app driven directly: one request is one call, no HTTP client or thread in between."""

    def __init__(self, app: Any, state: dict[str, Any]) -> None:
        self.app, self.state = app, state

    async def status(self, path: str) -> int:
        raw = path.encode("ascii")
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": unquote(path), "raw_path": raw, "query_string": b"", "root_path": "",
            "headers": [(b"host", b"trial.example")], "client": ("81.2.69.160", 50000), "server": ("trial", 80),
            "state": dict(self.state),
        }
        answer = {"status": 0}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]

        try:
            await self.app(scope, receive, send)
        except Exception:
            return 500  # what uvicorn would answer
        return answer["status"]


@contextlib.asynccontextmanager
async def in_process(app: Any) -> AsyncIterator[InProcess]:
    """Run the app's lifespan around the trial, as uvicorn would."""
    state: dict[str, Any] = {}
    started, stop, done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not started.is_set():
            return {"type": "lifespan.startup"}
        await stop.wait()
        return {"type": "lifespan.shutdown"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()
            if message["type"].endswith("failed"):
                raise RuntimeError(message.get("message", "startup failed"))
        elif message["type"].startswith("lifespan.shutdown"):
            done.set()

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    task = asyncio.create_task(app(scope, receive, send))
    while not started.is_set():
        await asyncio.sleep(0.01)
        if task.done():
            task.result()
    try:
        yield InProcess(app, state)
    finally:
        stop.set()
        await task


async def trial(client: InProcess, genuine: Sequence[str], secret: str, count: int) -> Counter[tuple[str, int]]:
    """Status counts by (mutation kind, status); the genuine tokens are sent too, as ("genuine", status)."""
    counts: Counter[tuple[str, int]] = Counter()
    for token in genuine:
        counts["genuine", await client.status("/v1/go/" + quote(token, safe=""))] += 1
    for kind, token in mutants(genuine, secret, count):
        counts[kind, await client.status("/v1/go/" + quote(token, safe=""))] += 1
    return counts


def table(counts: Counter[tuple[str, int]]) -> str:
    statuses = sorted({status for _, status in counts})
    kinds = list(dict.fromkeys(kind for kind, _ in counts))
    lines = ["| kind | tried | " + " | ".join(map(str, statuses)) + " |", "|---" * (len(statuses) + 2) + "|"]
    for kind in [*kinds, "all mutants"]:
        row = {s: sum(n for (k, st), n in counts.items() if st == s and (k == kind or
                                                                    (kind == "all mutants" and k != "genuine")))
               for s in statuses}
        lines.append(f"| {kind} | {sum(row.values())} | " + " | ".join(str(row[s]) for s in statuses) + " |")
    return "\n".join(lines)


def forbidden(counts: Counter[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """Mutants that redirected or answered 5xx: each one a finding."""
    return {key: n for key, n in counts.items() if key[0] != "genuine" and (300 <= key[1] < 400 or key[1] >= 500)}


async def _prepare(settings: Any) -> None:
    import asyncpg
    import redis.asyncio as aioredis

    from cache.directory import refresh_directory
    from cache.keys import Keys

    conn = await asyncpg.connect(settings.database_url)
    redis = aioredis.Redis.from_url(settings.redis_url)
    try:
        from cache.db import migrate

        await migrate(conn)
        await conn.execute(
            "INSERT INTO retailers (retailer_id, name, cart_url_template) VALUES ($1, $2, $3)", *RETAILER
        )
        await refresh_directory(conn, redis, Keys(settings.redis_prefix))
    finally:
        await conn.close()
        await redis.aclose()


async def _run(settings: Any, count: int) -> int:
    from edge_api.app import create_app

    await _prepare(settings)
    genuine = genuine_tokens(settings)
    started = time.perf_counter()
    async with in_process(create_app(settings)) as client:
        counts = await trial(client, genuine, settings.secret, count)
    elapsed = time.perf_counter() - started
    print(table(counts))
    bad = forbidden(counts)
    print(f"\n{count} mutants in {elapsed:.1f} s; genuine tokens redirected: {counts['genuine', 302]}/{len(genuine)};"
          f" mutants redirected or 5xx: {sum(bad.values())}")
    return 1 if bad or counts["genuine", 302] != len(genuine) else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000, help="mutants to send (default 100,000)")
    args = parser.parse_args()
    from loadtest.stack import scratch_settings

    with scratch_settings(aggregate_events=False) as settings:
        status = asyncio.run(_run(settings, args.count))
    sys.exit(status)


if __name__ == "__main__":
    main()
