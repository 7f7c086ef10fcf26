"""uvicorn's httptools protocol, sending each response's head and body in one write.

uvicorn writes the status line and headers, then the body, each with its own `send()`;
on loopback a send costs about as much as a small answer does to build. Here a write is
held until the end of the loop's current step: a body written meanwhile (the usual case)
leaves with its head in one `writev`, anything else leaves at the end of the step, in order.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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


class JoinedWritesProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` over `JoinedWrites`: pass as uvicorn's `http=`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(JoinedWrites(transport, self.loop))  # type: ignore[arg-type]
