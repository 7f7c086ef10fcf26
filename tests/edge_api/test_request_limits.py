"""Request heads have limits, on a real `nearcart serve`: the largest head allowed passes, one byte more gets 431."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from cache.embedded import free_port
from edge_api.http_protocol import MAX_HEAD_BYTES, MAX_HEADERS, MAX_URL_BYTES
from edge_api.settings import Settings
from loadtest.stack import _bin, running, settings_env

REQUEST_LINE = b"GET /healthz HTTP/1.1\r\nHost: t\r\n"


@pytest.fixture
def server(settings: Settings) -> Iterator[tuple[int, psutil.Process]]:
    """(port, process) of `nearcart serve` with one worker (which then is the process itself)."""
    port = free_port()
    command = [_bin("nearcart"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = settings_env(settings)
    env["NEARCART_LOG_LEVEL"] = "warning"
    with running(command, env, port, "/healthz"):
        found = [child for child in psutil.Process().children(recursive=True) if str(port) in child.cmdline()]
        yield port, found[0]


def exchange(port: int, head: bytes, chunk: int = 256 * 1024) -> tuple[bytes, int]:
    """Send `head` (in chunks, as a client streaming it would); (what the server answered, bytes it took)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            while sent < len(head):
                sent += sock.send(head[sent:sent + chunk])
        except OSError:
            pass  # the server closed: what it answered before is still to read
        received = b""
        try:
            while not complete(received):
                data = sock.recv(65536)
                if not data:
                    break
                received += data
        except OSError:
            pass
    return received, sent


def complete(answer: bytes) -> bool:
    head, found, body = answer.partition(b"\r\n\r\n")
    lengths = [line.split(b":")[1] for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
    return bool(found and lengths) and len(body) >= int(lengths[0])


def head_of(size: int, headers: int = 0) -> bytes:
    """A /healthz request whose head is exactly `size` bytes, padded by one header (plus `headers` small ones)."""
    extra = b"".join(b"X-N%d: 1\r\n" % n for n in range(headers))
    fixed = len(REQUEST_LINE) + len(extra) + len(b"X-Pad: \r\n\r\n")
    return REQUEST_LINE + extra + b"X-Pad: " + b"a" * (size - fixed) + b"\r\n\r\n"


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_the_largest_head_allowed_is_answered_and_one_byte_more_gets_431(server: tuple[int, psutil.Process]) -> None:
    port, _ = server
    largest = head_of(MAX_HEAD_BYTES)
    assert len(largest) == MAX_HEAD_BYTES
    answer, _ = exchange(port, largest)
    assert status(answer) == 200, answer[:200]
    answer, _ = exchange(port, head_of(MAX_HEAD_BYTES + 1))
    assert status(answer) == 431 and b"connection: close" in answer.lower()
    assert str(MAX_HEAD_BYTES).encode() in answer
    # The head may come in many small reads: it is the bytes of the head that count, not one read's.
    answer, _ = exchange(port, head_of(MAX_HEAD_BYTES + 1), chunk=1000)
    assert status(answer) == 431


def test_too_many_header_fields_get_431_and_a_long_request_line_414(server: tuple[int, psutil.Process]) -> None:
    port, _ = server
    assert status(exchange(port, head_of(2000, headers=MAX_HEADERS - 2))[0]) == 200
    answer, _ = exchange(port, head_of(2000, headers=MAX_HEADERS))
    assert status(answer) == 431 and str(MAX_HEADERS).encode() in answer
    answer, _ = exchange(port, b"GET /healthz?" + b"q" * MAX_URL_BYTES + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status(answer) == 414 and str(MAX_URL_BYTES).encode() in answer


def test_a_32_mb_header_is_refused_without_the_worker_keeping_it(server: tuple[int, psutil.Process]) -> None:
    port, worker = server
    # The server answers requests as before: keep-alive, a body after a normal head.
    assert status(exchange(port, REQUEST_LINE + b"\r\n")[0]) == 200
    before = worker.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        # The worker's peak while it reads (its memory could be given back by the time it answers).
        while not done.wait(0.01):
            peak.append(worker.memory_info().rss)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    try:
        answer, sent = exchange(port, REQUEST_LINE + b"X-Huge: " + b"h" * (32 * 1024 * 1024) + b"\r\n\r\n")
    finally:
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
    grown = max(peak) - before
    print(f"32 MB header: {status(answer)} after {sent / 1e6:.1f} MB sent, {elapsed:.2f} s,"
          f" worker peak RSS {grown / 1e6:+.1f} MB")
    assert status(answer) == 431
    assert grown < 8 * 1024 * 1024
    assert status(exchange(port, REQUEST_LINE + b"\r\n")[0]) == 200


@pytest.mark.parametrize("request_line", [b"POST /v1/events HTTP/1.1\r\n", b"GET /healthz HTTP/1.1\r\n"])
def test_a_10_gb_body_is_refused_before_it_is_read_and_the_connection_closed(
    server: tuple[int, psutil.Process], request_line: bytes
) -> None:
    port, _ = server
    head = request_line + b"Host: t\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n"
    answer, _ = exchange(port, head + b"[" * 65536)
    assert status(answer) == 413 and b"connection: close" in answer.lower()
    assert b'"parameter":"body"' in answer
