"""A TCP proxy in front of a real Redis that can hold its replies back: the write lands, the reply is late.

That is what a timeout looks like to a client when Redis did apply the command (a busy server,
a slow network): the client must assume nothing about whether it happened.
"""

from __future__ import annotations

import asyncio
import contextlib


class SlowReplies:
    """Forwards clients to `host:port`; replies wait `delay_s` seconds on their way back."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.target_port = host, port
        self.delay_s = 0.0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> SlowReplies:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(self.host, self.target_port)
        up = asyncio.create_task(self._pipe(client_r, server_w, slow=False))
        down = asyncio.create_task(self._pipe(server_r, client_w, slow=True))
        self._tasks |= {up, down}
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        for task in (up, down):
            task.cancel()
        for writer in (server_w, client_w):
            writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, slow: bool) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if slow and self.delay_s:
                    await asyncio.sleep(self.delay_s)
                writer.write(data)
                await writer.drain()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
