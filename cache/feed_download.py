"""One conditional download of a retailer's feed to a file: capped, timed, and checked for a cut-off body.

A retailer's server may stall, send more than it announced or less: the file is written as it
streams (never held in memory), stopped at the size cap, and refused if a body of announced
length ends half-way through a row, which is what a Content-Length shorter than the feed leaves
(HTTP/1.1 reads no further than it, silently); a Content-Length longer than the body is a
protocol error of its own. A cut that falls exactly at a row's end cannot be told from a short
feed: those complete rows load, nothing else is touched.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

_CHUNK = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


class DownloadError(Exception):
    """The feed could not be fetched whole; the message says why, for the run's status."""


@dataclass(frozen=True, slots=True)
class Downloaded:
    # False: the server answered 304, our copy is current and nothing was written.
    modified: bool
    etag: str | None = None
    last_modified: str | None = None
    size: int = 0


async def download(
    client: httpx.AsyncClient,
    url: str,
    dest: Path,
    *,
    etag: str | None,
    last_modified: str | None,
    max_bytes: int,
    timeout_s: float,
) -> Downloaded:
    """GET `url` into `dest` with If-None-Match / If-Modified-Since; `DownloadError` when not usable."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        # The whole download has one deadline: a server dripping a byte a second never trips a read timeout.
        async with asyncio.timeout(timeout_s):
            return await _stream(client, url, headers, dest, max_bytes)
    except TimeoutError as exc:
        raise DownloadError(f"timeout: no complete answer within {timeout_s:g} s") from exc
    except httpx.TimeoutException as exc:
        raise DownloadError(f"timeout: {type(exc).__name__}") from exc
    except httpx.HTTPError as exc:
        raise DownloadError(f"{type(exc).__name__}: {exc}") from exc


async def _stream(client: httpx.AsyncClient, url: str, headers: dict[str, str], dest: Path, cap: int) -> Downloaded:
    async with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 304:
            return Downloaded(modified=False)
        if response.status_code != 200:
            raise DownloadError(f"HTTP {response.status_code}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise DownloadError(f"announces {int(declared):,} bytes, over the {cap:,}-byte cap")
        size = 0
        with dest.open("wb") as out:
            async for chunk in response.aiter_bytes(_CHUNK):
                size += len(chunk)
                if size > cap:
                    raise DownloadError(f"larger than the {cap:,}-byte cap: stopped there")
                out.write(chunk)
        # Only a body whose length was announced can have been cut by it (a chunked or close-delimited body
        # ends where the server ended it): then a text feed must end at a row's end. Google Sheets' CSV
        # exports end without a newline, but are not sent with a Content-Length.
        announced = declared.isdigit() and response.headers.get("content-encoding", "identity") == "identity"
        problem = _cut_off(dest, text_too=announced)
        if problem:
            raise DownloadError(f"body cut off ({problem}): its Content-Length may be shorter than the feed")
        return Downloaded(
            modified=True, etag=response.headers.get("etag"), last_modified=response.headers.get("last-modified"),
            size=size,
        )


def _cut_off(path: Path, text_too: bool) -> str | None:
    """Why the file looks truncated, or None: a gzip stream must be whole; with `text_too`, text must end at
    a row's end."""
    with path.open("rb") as fh:
        head = fh.read(2)
        if head == _GZIP_MAGIC:
            fh.seek(0)
            return _gzip_incomplete(fh.read)
        if not text_too:
            return None
        fh.seek(max(0, path.stat().st_size - 256))
        tail = fh.read().rstrip(b" \t\r")
    if not tail or tail.endswith(b"\n"):
        return None
    stripped = tail.rstrip()
    if stripped.endswith(b">"):  # XML (Google's inventory feed) may end without a newline
        return None
    return "the last row has no line end"


def _gzip_incomplete(read: Callable[[int], bytes]) -> str | None:
    inflate = zlib.decompressobj(wbits=31)
    while chunk := read(_CHUNK):
        try:
            # Decompressed output is dropped at once (max_length bounds it): only the stream's end matters.
            inflate.decompress(chunk, _CHUNK)
            while inflate.unconsumed_tail:
                inflate.decompress(inflate.unconsumed_tail, _CHUNK)
        except zlib.error as exc:
            return f"damaged gzip data: {exc}"
        if inflate.eof:
            return None
    return None if inflate.eof else "the gzip stream ends early"
