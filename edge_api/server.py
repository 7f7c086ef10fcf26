"""`nearcart serve`: uvicorn with uvloop and httptools (heads and bodies joined), N worker processes.

Workers are fresh processes that build the app from `NEARCART_*` variables, so the
settings this process was given (CLI overrides, embedded service URLs) are written
back into the environment they inherit.
"""

from __future__ import annotations

import os

import msgspec
import uvicorn

from edge_api.http_protocol import JoinedWritesProtocol
from edge_api.settings import PREFIX, Settings


def settings_environ(settings: Settings) -> dict[str, str]:
    """`NEARCART_*` variables that make `load_settings()` rebuild exactly `settings`."""
    environ = {}
    for name, value in msgspec.structs.asdict(settings).items():
        text = ",".join(value) if isinstance(value, tuple) else str(value)
        environ[PREFIX + name.upper()] = text
    return environ


def run_server(settings: Settings, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    os.environ.update(settings_environ(settings))
    uvicorn.run(
        "edge_api.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=max(1, workers),
        loop="uvloop",
        # httptools, with each response's head and body sent in one write (edge_api.http_protocol).
        http=JoinedWritesProtocol,
        log_level=settings.log_level,
        # The access log would write whole client IPs; we log nothing per request (privacy), metrics count instead.
        access_log=False,
        # X-Forwarded-For is judged by edge_api.client_ip against NEARCART_TRUSTED_PROXIES, not by uvicorn.
        proxy_headers=False,
        server_header=False,
        # Keep-alive connections from a CDN must not hold a deploy's SIGTERM for long.
        timeout_graceful_shutdown=5,
        # Outlast the idle timeout of the proxy in front (nginx keeps upstream connections 60 s): with
        # uvicorn's default 5 s the server closes a connection just as the proxy reuses it, and that
        # request fails (seen in the Locust smoke as "status 0").
        timeout_keep_alive=75,
    )
