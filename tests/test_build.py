"""A BUILT tree runs its request path compiled, as setup.py builds it.

These tests check the result of the Cython build, not the code: an unbuilt checkout (a worktree, a plain
`pip install` skipped) is a valid tree whose sources run as they are (setup.py), so there they are not run.
They run where the build is expected: `./run test` (hence CI, `.ci/run`) sets
`NEARCART_EXPECT_COMPILED=1` after installing, and tests/conftest.py deselects the `built_tree` tests
without it, saying so in the report header and the summary ("N deselected"), never as a pass or a skip.
Expecting the build instead of guessing it from the files present means a build that silently did not
happen fails here rather than going unnoticed.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parent.parent / "setup.py"

pytestmark = pytest.mark.built_tree


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
