"""Routes that match a path whole: Starlette ends each route's pattern with `$`, which Python also
matches before a final newline, so `/healthz%0A` answered as `/healthz` and `/p/demo/…/qr.svg%0A`
as the QR code. The same rule as cache/identifiers.py: the pattern ends at `\\Z`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.routing import BaseRoute


def strict_paths(routes: Iterable[BaseRoute]) -> None:
    """End every route's (and every mounted route's) path pattern at `\\Z` instead of `$`, in place."""
    for route in routes:
        regex: re.Pattern[str] | None = getattr(route, "path_regex", None)
        if regex is not None and regex.pattern.endswith("$"):
            route.path_regex = re.compile(regex.pattern[:-1] + r"\Z")  # type: ignore[attr-defined]
        strict_paths(getattr(route, "routes", None) or ())
