"""Do a retailer's basket links answer? A sample built from its template, as a click would build them.

A link works when its first answer is 2xx, or a 3xx to the same host (a basket page that
redirects to a login or to the basket is fine); it fails on any other status, a redirect to
another host (the retailer's template points at a host that gave up), a timeout or a refused
connection. Redirects are not followed: the first answer says all that is needed.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urljoin, urlsplit

import asyncpg
import httpx

from cache.url_policy import fetch_url_error
from edge_api.clicks import UnsafeRedirect, basket_url
from edge_api.tokens import ClickTarget

# Links fetched at once, over all retailers (one per retailer host at a time).
PARALLEL_LINKS = 8

_SAMPLE = """
SELECT o.store_id, o.gtin FROM offers o
WHERE o.retailer_id = $1 AND o.quantity > 0
LIMIT $2
"""


def sample_url(template: str, store_id: str, gtin: str, allow_http_loopback: bool = False) -> str:
    """The basket URL a click on this offer would lead to (no campaign tracking added)."""
    target = ClickTarget(retailer_id="", store_id=store_id, gtin=gtin, campaign="", issued_at=0)
    if allow_http_loopback and template.startswith("http://"):
        # Tests' fake retailers serve plain http on loopback; basket_url itself only ever builds https.
        return "http://" + basket_url("https://" + template[7:], target, {}).removeprefix("https://")
    return basket_url(template, target, {})


async def sample_links(conn: asyncpg.Connection, retailer_id: str, template: str, count: int,
                       allow_http_loopback: bool = False) -> list[str]:
    """Up to `count` basket URLs for in-stock offers of the retailer, distinct."""
    urls: list[str] = []
    for row in await conn.fetch(_SAMPLE, retailer_id, count * 4):
        try:
            url = sample_url(template, row["store_id"], row["gtin"], allow_http_loopback)
        except UnsafeRedirect:
            continue  # a click on it shows an error page: counted by the click metrics, not fetched here
        if url not in urls:
            urls.append(url)
        if len(urls) >= count:
            break
    return urls


async def check_link(client: httpx.AsyncClient, url: str, timeout_s: float, allow_http_loopback: bool) -> str | None:
    """Why the link fails, or None when it works."""
    problem = fetch_url_error(url, allow_http_loopback)
    if problem:
        return problem
    try:
        async with asyncio.timeout(timeout_s):
            async with client.stream("GET", url) as response:
                status = response.status_code
                location = response.headers.get("location", "")
    except (TimeoutError, httpx.TimeoutException):
        return f"no answer within {timeout_s:g} s"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        target = urlsplit(urljoin(url, location))
        if location and target.hostname == urlsplit(url).hostname:
            return None
        return f"HTTP {status} redirect to another host ({target.hostname or 'none'})"
    return f"HTTP {status}"


async def check_links(urls: list[str], timeout_s: float, allow_http_loopback: bool = False) -> dict[str, str | None]:
    """Each URL's failure (None: it works); a few at a time over all hosts, one at a time per host."""
    hosts: dict[str, asyncio.Lock] = {}
    slots = asyncio.Semaphore(PARALLEL_LINKS)
    outcome: dict[str, str | None] = {}

    async def one(client: httpx.AsyncClient, url: str) -> None:
        async with hosts.setdefault(urlsplit(url).hostname or "", asyncio.Lock()), slots:
            outcome[url] = await check_link(client, url, timeout_s, allow_http_loopback)

    async with httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s), follow_redirects=False,
        headers={"User-Agent": "nearcart-link-check/1 (+quality check)"},
    ) as client:
        await asyncio.gather(*(one(client, url) for url in dict.fromkeys(urls)))
    return outcome
