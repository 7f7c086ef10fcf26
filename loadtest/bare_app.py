"""The benchmark's ceiling: a bare Starlette JSON route, served the way `nearcart serve` serves the API.

It answers `/v1/offers` (ignoring the query) so the same load scripts hit the
same path with the same request bytes; what `/v1/offers` costs beyond this is
ours. Run: `python -m loadtest.bare_app --port 8001 --workers 1`.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge_api.http_protocol import JoinedWritesProtocol


async def offers(request: Request) -> Response:
    return JSONResponse({"gtin": request.query_params.get("gtin", ""), "offers": []})


async def ready(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/v1/offers", offers), Route("/readyz", ready)])


def serve(app: str, port: int, workers: int = 1) -> None:
    """Serve `app` (an import string) with edge_api.server.run_server's knobs: only the app differs between rows."""
    uvicorn.run(app, host="127.0.0.1", port=port, workers=workers, loop="uvloop", http=JoinedWritesProtocol,
                log_level="warning", access_log=False, proxy_headers=False, server_header=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    serve("loadtest.bare_app:app", args.port, args.workers)


if __name__ == "__main__":
    main()
