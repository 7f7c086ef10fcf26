"""The server's HTTP protocol: a response's head and body leave in one write, and HTTP still works."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from cache.embedded import free_port
from edge_api.http_protocol import MAX_HEAD_BYTES, JoinedWrites, JoinedWritesProtocol


class RecordingTransport:
    """Stands for the socket: records what reaches it, in which calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[bytes]]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", [data]))

    def writelines(self, chunks: list[bytes]) -> None:
        self.calls.append(("writelines", list(chunks)))

    def close(self) -> None:
        self.calls.append(("close", []))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0


async def test_head_and_body_written_in_one_step_leave_in_one_call_and_in_order() -> None:
    real = RecordingTransport()
    joined = JoinedWrites(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    joined.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    joined.write(b"{}")
    assert real.calls == [] and joined.get_write_buffer_size() == 40
    await asyncio.sleep(0)
    assert real.calls == [("writelines", [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", b"{}"])]
    joined.write(b"last words")
    joined.close()  # what is held goes out before the connection closes
    assert real.calls[1:] == [("writelines", [b"last words"]), ("close", [])]


async def _stream() -> AsyncIterator[bytes]:
    for i in range(64):
        if i % 8 == 0:
            await asyncio.sleep(0)
        yield bytes([65 + i % 26]) * 16384


def _app() -> Starlette:
    async def small(request: Request) -> Response:
        return JSONResponse({"n": request.query_params.get("n", "")})

    async def stream(request: Request) -> Response:
        return StreamingResponse(_stream(), media_type="application/octet-stream")

    async def closing(request: Request) -> Response:
        return Response(b"bye", headers={"connection": "close"})

    async def size(request: Request) -> Response:
        return JSONResponse({"size": len(await request.body())})

    return Starlette(routes=[Route("/small", small, methods=["GET", "HEAD"]), Route("/stream", stream),
                             Route("/close", closing), Route("/size", size, methods=["POST"])])


class QuickHeadProtocol(JoinedWritesProtocol):
    head_timeout_s = 0.5


def _serve(protocol: type[JoinedWritesProtocol], keep_alive_s: int = 5) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(_app(), host="127.0.0.1", port=port, loop="uvloop", http=protocol,
                            log_level="warning", lifespan="off", timeout_keep_alive=keep_alive_s)
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    yield from _serve(JoinedWritesProtocol)


@pytest.fixture(scope="module")
def impatient_server() -> Iterator[str]:
    """Heads must be whole within 0.5 s; idle connections close after 1 s."""
    yield from _serve(QuickHeadProtocol, keep_alive_s=1)


def _trickle(url: str, pieces: list[bytes], every_s: float, for_s: float) -> tuple[bytes, float]:
    """Send `pieces` one every `every_s`, then read until the server hangs up (or `for_s` pass):
    what came back, and when the server closed (seconds after connecting)."""
    host, port = url.removeprefix("http://").split(":")
    started = time.monotonic()
    received = b""
    with socket.create_connection((host, int(port)), timeout=for_s) as sock:
        sock.settimeout(every_s)
        for piece in pieces:
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                chunk = sock.recv(65536)
                received += chunk
                if not chunk:
                    return received, time.monotonic() - started
            except TimeoutError:
                pass
        sock.settimeout(max(0.1, for_s - (time.monotonic() - started)))
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            return received, float("inf")
        except ConnectionResetError:
            pass
    return received, time.monotonic() - started


def test_a_head_trickling_in_gets_408_and_the_connection_closes(impatient_server: str) -> None:
    head = b"GET /small?n=1 HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"s" * 40 + b"\r\n\r\n"
    received, closed_after = _trickle(impatient_server, [head[i:i + 1] for i in range(len(head))], 0.05, 3.0)
    assert received.startswith(b"HTTP/1.1 408 Request Timeout") and b"0.5 s" in received
    assert 0.45 <= closed_after < 3.0  # the timer runs on the loop's clock: allow its granularity


def test_a_head_in_pieces_that_ends_in_time_is_answered(impatient_server: str) -> None:
    head = b"GET /small?n=2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    received, _ = _trickle(impatient_server, [head[:10], head[10:30], head[30:]], 0.1, 3.0)
    assert received.startswith(b"HTTP/1.1 200 OK") and received.endswith(b'{"n":"2"}')


def test_a_connection_that_sends_nothing_is_closed_like_an_idle_one(impatient_server: str) -> None:
    received, closed_after = _trickle(impatient_server, [], 0.1, 4.0)
    assert received == b"" and 0.9 <= closed_after < 4.0


def _exchange(url: str, raw: bytes, until: bytes, count: int) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(raw)
        received = b""
        while received.count(until) < count:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_pipelined_requests_on_one_connection_get_their_answers_in_order(server: str) -> None:
    raw = b"".join(b"GET /small?n=%d HTTP/1.1\r\nHost: t\r\n\r\n" % n for n in range(3))
    received = _exchange(server, raw, b"}", 3)
    assert received.count(b"HTTP/1.1 200 OK") == 3
    assert [received.index(b'{"n":"%d"}' % n) for n in range(3)] == sorted(
        received.index(b'{"n":"%d"}' % n) for n in range(3))


def test_head_answers_headers_only_and_the_connection_goes_on(server: str) -> None:
    raw = b"HEAD /small HTTP/1.1\r\nHost: t\r\n\r\nGET /small?n=7 HTTP/1.1\r\nHost: t\r\n\r\n"
    received = _exchange(server, raw, b"}", 1)
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"content-length: 8" in head
    assert rest.startswith(b"HTTP/1.1 200 OK") and rest.endswith(b'{"n":"7"}')


def test_a_streamed_megabyte_arrives_whole_and_a_closing_answer_closes(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as client:
        body = client.get("/stream").content
        assert len(body) == 64 * 16384 and body[:16384] == b"A" * 16384 and body[-1:] == bytes([65 + 63 % 26])
    # Read until the server hangs up: the answer it wrote just before closing is all there.
    received = _exchange(server, b"GET /close HTTP/1.1\r\nHost: t\r\n\r\n", b"never", 1)
    assert received.endswith(b"bye") and b"connection: close" in received


def test_bodies_larger_than_the_head_limit_still_pass_pipelined_in_one_send(server: str) -> None:
    # The head limit counts heads only: bodies sent in the same read as their head are the app's.
    body = b"b" * (3 * MAX_HEAD_BYTES)
    one = b"POST /size HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    received = _exchange(server, one * 3 + b"GET /small?n=1 HTTP/1.1\r\nHost: t\r\n\r\n", b"}", 4)
    assert received.count(b'{"size":%d}' % len(body)) == 3 and received.endswith(b'{"n":"1"}')


def chunked(body_chunks: list[bytes], trailer: bytes = b"") -> bytes:
    framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in body_chunks)
    return b"POST /size HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\n" + trailer


def test_a_chunked_body_of_many_chunks_passes_and_a_trailer_over_the_limit_closes(server: str) -> None:
    # Chunk framing is not held by the parser: 2,000 chunks is far more framing than a head may have.
    received = _exchange(server, chunked([b"c" * 10] * 2000, b"X-Sum: 1\r\n\r\n"), b"}", 1)
    assert received.endswith(b'{"size":20000}')
    # httptools keeps a trailer whole until it ends: one over the limit ends the connection instead, with no answer.
    # The server hangs up while the rest is still arriving: the client sees the end, or a reset (unread bytes).
    try:
        received = _exchange(server, chunked([b"abc"], b"X-Trailer: " + b"t" * (4 * MAX_HEAD_BYTES)), b"never", 1)
    except ConnectionResetError:
        received = b""
    assert received == b""


def test_an_oversized_head_pipelined_behind_an_answer_in_progress_ends_the_connection_after_it(server: str) -> None:
    # Twice the limit: a head that begins in the same piece as the one before may pass it by that piece.
    oversized = b"GET /small HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"p" * 2 * MAX_HEAD_BYTES + b"\r\n\r\n"
    received = _exchange(server, b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n" + oversized, b"never", 1)
    # The streamed answer arrives whole, nothing cut into it, and then the server hangs up.
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"431" not in body
    assert body.endswith(b"0\r\n\r\n") and len(body) > 64 * 16384
