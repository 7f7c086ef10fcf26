"""Send step of `/v1/offers`: `OffersFront` answers it before routing, from kept whole answers or directly.

A campaign launch sends many shoppers to one product from the same postal codes and the
same rounded positions; they send byte-identical query strings. The whole answer (status,
headers, body) is kept under the raw query string, Host and Origin, stamped like the
micro-cache with the data it came from (so a stock change announced for its GTIN retires
it at once), and with the ETag of the campaign it applied: a pushed campaign retires its
answers as soon as this worker's campaign store has read it (within a few seconds), not
at the end of their lifetime. Answers that depend on the client's IP (no position given)
are never kept here.

A request the cache cannot answer is answered here too (`answer_offers`), with what the
middleware stack adds to other routes, from the same code (`cors`, `http_metrics`,
`errors.internal_error`), but without its layers: on this route they cost more than the
answer itself. Identical requests that arrive while it is computed wait for it and get the
same bytes (unless it turns out to be an error or to depend on the client's IP: then each
computes its own). Other methods and paths go down the stack as usual.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable

from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from cache.index_reader import IndexReader
from edge_api.campaign_store import CampaignStore
from edge_api.cors import cors_headers_for
from edge_api.errors import internal_error
from edge_api.http_metrics import observe
from edge_api.offers import ROUTE, answer_offers, max_age, result_of
from edge_api.state import EdgeState

log = logging.getLogger("nearcart.offers")
FRONT_HITS = Counter("nearcart_offers_front_hits_total", "Offers answers replayed whole from the front cache")
COALESCED = Counter("nearcart_offers_coalesced_total", "Offers answers shared with identical requests made meanwhile")

# (GTIN, campaign id, its ETag, response headers, body) of a whole answer.
FrontEntry = tuple[str, str, str, tuple[tuple[bytes, bytes], ...], bytes]
FrontKey = tuple[bytes, bytes, bytes]


class OffersFront:
    """Answers `GET /v1/offers` in front of the Starlette app (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Answers being computed, by front key: identical requests arriving meanwhile (a TV spot's
        # first second) wait for that one instead of each asking Redis. None: not shareable.
        # Each entry lists the waiters' futures (made only when one waits: asking for the running loop costs
        # a system call).
        self._computing: dict[FrontKey, list[asyncio.Future[FrontEntry | None]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lifespan_state = scope.get("state")
        if scope["type"] != "http" or scope["path"] != ROUTE or scope["method"] != "GET" or not lifespan_state:
            await self.app(scope, receive, send)
            return
        state: EdgeState = lifespan_state["edge"]
        front = state.front_cache
        reader = state.index
        host = origin = b""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value
        key = (scope["query_string"], host, origin)
        found = front.lookup(key, max_age(state.settings, reader))
        if found is not None and _still_true(found[0], found[1], reader, state.campaigns):
            FRONT_HITS.inc()
            headers, body = found[1][3:]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        waiters = self._computing.get(key)
        if waiters is not None:
            waiting: asyncio.Future[FrontEntry | None] = asyncio.get_running_loop().create_future()
            waiters.append(waiting)
            shared = await waiting
            if shared is not None:
                COALESCED.inc()
                await send({"type": "http.response.start", "status": 200, "headers": shared[3]})
                await send({"type": "http.response.body", "body": shared[4]})
                return
        mine: list[asyncio.Future[FrontEntry | None]] = []
        self._computing.setdefault(key, mine)
        shareable: FrontEntry | None = None
        try:
            started = time.perf_counter()
            status, headers, body, shareable = await _compute(state, scope, key, origin)
        finally:
            # Before sending: a slow client must not hold up the requests waiting for this answer.
            if self._computing.get(key) is mine:
                del self._computing[key]
            for waiting in mine:
                if not waiting.done():  # a waiter cancelled (its client gone) leaves the others be
                    waiting.set_result(shareable)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        observe(ROUTE, "GET", status, started)


async def _compute(state: EdgeState, scope: Scope, key: FrontKey, origin: bytes
                   ) -> tuple[int, tuple[tuple[bytes, bytes], ...], bytes, FrontEntry | None]:
    """(status, headers, body) for a request no cache held, and the entry others may share, if any."""
    try:
        result = await answer_offers(state, scope)
    except Exception:
        log.exception("offers answer failed")
        result = result_of(internal_error())
    status, raw_headers, body, shared = result
    if origin:
        raw_headers = [*raw_headers, *await cors_headers_for(state.campaigns, scope, origin.decode("latin-1"))]
    # Tuples of bytes: the collector stops tracking them, thousands of cached answers cost it nothing.
    headers = tuple(raw_headers)
    if status != 200 or shared is None:
        return status, headers, body, None  # an error, or an answer that depends on this client's address
    gtin, stamp, campaign_id, etag = shared
    entry = (gtin, campaign_id, etag, headers, body)
    state.front_cache.put(key, stamp, entry)
    return status, headers, body, entry


def _still_true(stamp: Hashable, entry: FrontEntry, reader: IndexReader, campaigns: CampaignStore) -> bool:
    """Whether a kept answer was computed from the index data and campaign rules of now."""
    return stamp == reader.stamp(entry[0]) and (not entry[1] or campaigns.known_etag(entry[1]) == entry[2])

