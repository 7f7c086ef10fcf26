"""The request path runs compiled, as setup.py builds it (`./run test` and `./run demo` install it so)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parent.parent / "setup.py"


def request_path_modules() -> list[str]:
    """setup.py's `REQUEST_PATH`, read without running setuptools, as module names."""
    for node in ast.parse(SETUP.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "REQUEST_PATH" for t in node.targets):
            return [path.removesuffix(".py").replace("/", ".") for path in ast.literal_eval(node.value)]
    raise AssertionError("setup.py lists no REQUEST_PATH")


@pytest.mark.parametrize("name", request_path_modules())
def test_request_path_module_is_compiled(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None and module.__file__.endswith(".so"), (
        f"{name} runs as plain Python from {module.__file__}: reinstall (`./run test` does) to build it")
