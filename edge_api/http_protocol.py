"""uvicorn's httptools protocol, sending each response's head and body in one write, reading bounded heads.

uvicorn writes the status line and headers, then the body, each with its own `send()`;
on loopback a send costs about as much as a small answer does to build. Here a write is
held until the end of the loop's current step: a body written meanwhile (the usual case)
leaves with its head in one `writev`, anything else leaves at the end of the step, in order.

uvicorn's httptools protocol reads a request head of any size (a 100 MB header took 9.9 s
and 159 MB of worker memory before its 200). Here the parser is never given more than
`MAX_HEAD_BYTES` of one head: past that, or past `MAX_HEADERS` fields, the answer is 431;
a request line over `MAX_URL_BYTES` gets 414. Either way the connection then closes, and
what the client still sends meanwhile is read and dropped, never kept. The same bound holds
inside a chunked body, whose trailers httptools would otherwise keep whole, however long.

uvicorn also waits forever for a head that trickles in a byte at a time (a "slow loris" holds a
connection that way with a few bytes a minute), and for a first byte on a new connection. Here a
head not whole within `head_timeout_s` of its first byte gets 408 and the connection closes, and a
new connection that sends nothing is closed after uvicorn's keep-alive timeout, as an idle one is.
A head that arrives in one read, the usual case, costs no timer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

# As Node's default (16 KB): room for cookies, a 4 KB JWT and a CDN's headers; nginx's default
# large_client_header_buffers (4 x 8 KB) is of the same order.
MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
MAX_URL_BYTES = 8 * 1024
# After a refusal, how long the rest of what the client sends is read and dropped: closing with
# unread bytes makes the kernel send a reset, and the client would lose our answer with it.
LINGER_S = 2.0


class JoinedWrites:
    """A connection's transport whose writes within one loop step leave together."""

    __slots__ = ("_transport", "_held", "_loop")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._held: list[bytes] = []
        self._loop = loop

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if not held:
            self._loop.call_soon(self._flush)
        held.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _flush(self) -> None:
        held = self._held
        if held:
            self._held = []
            if not self._transport.is_closing():
                self._transport.writelines(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._held))

    def __getattr__(self, name: str) -> Any:
        # is_closing, get_extra_info, pause_reading, resume_reading, set_protocol, ...
        return getattr(self._transport, name)


class HeadRefused(Exception):
    """A request head over a limit: the status and reason to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class JoinedWritesProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` over `JoinedWrites`, with bounded request heads: pass as uvicorn's `http=`."""

    # Seconds from a head's first byte to its end: ample for any client on a slow link (nginx: 60 s for
    # client_header_timeout, but it is a proxy that buffers for us; clients reach us through one).
    head_timeout_s = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(JoinedWrites(transport, self.loop))  # type: ignore[arg-type]
        self.head_timer: asyncio.TimerHandle | None = None
        # A connection that never sends a byte is closed like an idle keep-alive one.
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)
        # Bytes given to the parser since it last handed something on: of the head in progress, or
        # in a body, of chunk framing and trailers (httptools keeps a trailer whole until it ends).
        self.held_bytes = 0
        self.in_body = False
        self.header_count = 0
        self.refusal: HeadRefused | None = None

    def data_received(self, data: bytes) -> None:
        if self.refusal is not None:
            return  # lingering: dropped unread
        self._unset_keepalive_if_required()
        try:
            if len(data) <= MAX_HEAD_BYTES - self.held_bytes:
                # The usual read, a whole small request: one feed, as uvicorn does it.
                self.held_bytes += len(data)
                self.parser.feed_data(data)
            else:
                self._feed(memoryview(data))
        except HeadRefused as exc:
            self._refuse(exc)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as exc:
            # A limit found in a parser callback arrives wrapped as the callback's error.
            if isinstance(exc.__context__, HeadRefused):
                self._refuse(exc.__context__)
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
        else:
            if self.held_bytes and not self.in_body and self.head_timer is None:
                # Part of a head and not its end: it must be whole within head_timeout_s.
                self.head_timer = self.loop.call_later(self.head_timeout_s, self._head_too_slow)

    def _head_too_slow(self) -> None:
        self.head_timer = None
        if not self.in_body and self.refusal is None and not self.transport.is_closing():
            self._refuse(HeadRefused(408, f"Request head not received within {self.head_timeout_s:g} s."))

    def _stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _feed(self, data: memoryview) -> None:
        """Give the parser at most `MAX_HEAD_BYTES` it has not handed on yet, a piece at a time."""
        while data:
            room = MAX_HEAD_BYTES - self.held_bytes
            if room <= 0:
                raise HeadRefused(431, f"Request head larger than {MAX_HEAD_BYTES} bytes.")
            piece, data = data[:room], data[room:]
            # Counted before parsing, and zeroed by the callbacks as the parser hands things on: what
            # follows them in the same piece goes uncounted, so a head may pass the limit by one piece
            # (twice the limit at most), never grow without bound.
            self.held_bytes += len(piece)
            self.parser.feed_data(piece)

    def _refuse(self, refusal: HeadRefused) -> None:
        self.refusal = refusal
        if self.in_body:
            # Trailers over the limit: the app may be answering already, so no answer can replace its own.
            self.transport.close()
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head after a request still being answered: ours cannot go before that answer
            # (it would land in the middle of it); the connection ends once it is out.
            self.cycle.keep_alive = False
            return
        body = (str(refusal) + "\n").encode("ascii")
        head = b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: %d\r\n\r\n"
        self.transport.write(STATUS_LINE[refusal.status] + head % len(body) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)

    def on_message_begin(self) -> None:
        self.header_count = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_URL_BYTES:
            raise HeadRefused(414, f"Request line longer than {MAX_URL_BYTES} bytes.")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        if self.header_count > MAX_HEADERS:
            raise HeadRefused(431, f"More than {MAX_HEADERS} header fields.")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.in_body = True
        self.held_bytes = 0
        if self.head_timer is not None:
            self._stop_head_timer()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self.held_bytes = 0
        super().on_body(body)

    def on_chunk_header(self) -> None:
        self.held_bytes = 0

    def on_chunk_complete(self) -> None:
        self.held_bytes = 0

    def on_message_complete(self) -> None:
        self.in_body = False
        self.held_bytes = 0
        super().on_message_complete()
