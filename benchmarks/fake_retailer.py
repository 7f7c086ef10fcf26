"""A retailer web server on a loopback port (pulled feeds, basket links), for tests and benchmarks/quality_network.py.

Each path answers as a test sets it (`serve`): a feed with validators, a stall, a body that
disagrees with its Content-Length, a redirect. Every request is logged with its headers and the
time it arrived and was answered, so tests can check conditional GETs and per-host politeness.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

Answer = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    started: float
    finished: float = 0.0


class FakeRetailer:
    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.seen: list[Seen] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                seen = Seen(urlsplit(self.path).path, {k.lower(): v for k, v in self.headers.items()}, time.monotonic())
                owner.seen.append(seen)
                answer = owner.answers.get(seen.path) or next(
                    (a for prefix, a in owner.answers.items() if prefix.endswith("/") and seen.path.startswith(prefix)),
                    None,
                )
                try:
                    if answer is None:
                        self.send_response(404)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    else:
                        answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout, a size cap): what the test wanted
                finally:
                    seen.finished = time.monotonic()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that hung up early (a timeout, a size cap) is what the tests set out to do

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(self, path: str, answer: Answer) -> str:
        """Answer `path` (every path under it when it ends with /) with `answer`; its full URL."""
        self.answers[path] = answer
        return self.base + path

    def requests_to(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]

    def __enter__(self) -> FakeRetailer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Feed:
    """A feed file that changes when the test says so, served with an ETag and Last-Modified."""

    def __init__(self, body: bytes) -> None:
        self.version = 0
        self.body = body
        self.modified = time.time() - 3600

    def change(self, body: bytes) -> None:
        self.version += 1
        self.body = body
        self.modified += 60

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        etag = f'"v{self.version}"'
        if handler.headers.get("If-None-Match") == etag:
            handler.send_response(304)
            handler.send_header("ETag", etag)
            handler.end_headers()
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/csv")
        handler.send_header("ETag", etag)
        handler.send_header("Last-Modified", formatdate(self.modified, usegmt=True))
        handler.send_header("Content-Length", str(len(self.body)))
        handler.end_headers()
        handler.wfile.write(self.body)


def status(code: int, location: str = "") -> Answer:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        if location:
            handler.send_header("Location", location)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    return answer


def stall(seconds: float, then: Answer | None = None) -> Answer:
    """Say nothing for `seconds` (then answer as `then`, if still connected)."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        if then is not None:
            then(handler)

    return answer


def lying_length(body: bytes, announced: int) -> Answer:
    """A body whose Content-Length says `announced` bytes; the connection closes after the body."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(announced))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
        handler.close_connection = True

    return answer


def endless(chunk: bytes, total: int) -> Answer:
    """`total` bytes with no Content-Length (the end is the connection's close), `chunk` after `chunk`."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Connection", "close")
        handler.end_headers()
        sent = 0
        while sent < total:
            handler.wfile.write(chunk)
            sent += len(chunk)
        handler.close_connection = True

    return answer
