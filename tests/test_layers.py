"""The lower layers (geo/, cache/) never import the edge app: they take URLs, prefixes and paths."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOWER_LAYERS = ("cache", "geo")


def imported_modules(source: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in `source`, those inside functions too."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), str(source))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def test_cache_and_geo_never_import_edge_api() -> None:
    sources = [path for layer in LOWER_LAYERS for path in sorted((ROOT / layer).rglob("*.py"))]
    assert len(sources) > 10  # the walk found the packages
    upward = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in sources
        for line, module in imported_modules(path)
        if module == "edge_api" or module.startswith("edge_api.")
    ]
    assert upward == []
