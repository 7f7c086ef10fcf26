"""`./run` redoes a set-up step only when its inputs changed since it last succeeded.

Each test copies the script into a scratch tree with a stand-in `.venv/bin/python`, `npm` and `node`
that log what they are asked to do (no network, no compiler), runs the script's set-up functions
twice or more, and reads the log: what a second `./run demo` would have spent its time on.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.test_build import request_path_modules

ROOT = Path(__file__).resolve().parent.parent
COMPILED = [name.replace(".", "/") + ".py" for name in request_path_modules()]

FAKE_PYTHON = """#!/bin/sh
if [ "$1" = -VV ]; then echo "Python 3.11.7 (stand-in)"; exit 0; fi
echo "python $*" >>"$CALLS"
"""
FAKE_NPM = """#!/bin/sh
echo "npm $*" >>"$CALLS"
case "$1" in
    ci) rm -rf node_modules && mkdir node_modules ;;
    run) rm -rf dist && mkdir dist ;;
esac
"""
FAKE_NODE = """#!/bin/sh
echo v20.0.0
"""


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A checkout as `./run` sees it, with a venv made earlier and every compiled module built."""
    tree = tmp_path / "nearcart"
    tree.mkdir()
    shutil.copy(ROOT / "run", tree / "run")
    shutil.copy(ROOT / "setup.py", tree / "setup.py")
    (tree / "pyproject.toml").write_text('[project]\nname = "nearcart"\n')
    for source in COMPILED:
        path = tree / source
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {source}\n")
        path.with_name(path.stem + ".cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    (tree / "edge_api" / "pages.py").write_text("# not compiled\n")
    _executable(tree / ".venv" / "bin" / "python", FAKE_PYTHON)
    widget = tree / "widget"
    for name, text in {"package.json": "{}", "package-lock.json": "{}", "src/main.ts": "export {};\n",
                       "scripts/build.mjs": "// build\n", "tsconfig.json": "{}"}.items():
        (widget / name).parent.mkdir(parents=True, exist_ok=True)
        (widget / name).write_text(text)
    _executable(tmp_path / "bin" / "npm", FAKE_NPM)
    _executable(tmp_path / "bin" / "node", FAKE_NODE)
    return tree


def set_up(tree: Path, steps: str = "setup_python test && setup_widget") -> list[str]:
    """Run the script's set-up as `./run demo` does; return the installs and builds it ran."""
    calls = tree.parent / "calls.log"
    calls.unlink(missing_ok=True)
    env = {"PATH": f"{tree.parent / 'bin'}:/usr/bin:/bin", "CALLS": str(calls)}
    subprocess.run(["bash", "-c", f"source ./run && {steps}"], cwd=tree, env=env,
                   check=True, capture_output=True, text=True, timeout=60)
    return calls.read_text().splitlines() if calls.exists() else []


def installs(calls: list[str]) -> list[str]:
    return [call for call in calls if "pip install" in call or call.startswith(("npm ci", "npm run"))]


def test_the_first_set_up_installs_and_builds_everything(tree: Path) -> None:
    assert installs(set_up(tree)) == [
        "python -m pip install -q --upgrade pip",
        "python -m pip install -q -e .[test]",
        "npm ci --no-audit --no-fund --loglevel=error",
        "npm run --silent build",
    ]


def test_a_second_set_up_with_nothing_changed_installs_nothing(tree: Path) -> None:
    set_up(tree)
    assert set_up(tree) == []


def test_an_edited_plain_module_needs_no_reinstall(tree: Path) -> None:
    set_up(tree)
    (tree / "edge_api" / "pages.py").write_text("# not compiled, edited\n")
    assert set_up(tree) == []


@pytest.mark.parametrize("source", [COMPILED[0], COMPILED[-1], "setup.py", "pyproject.toml"])
def test_an_edited_compiled_module_or_packaging_file_reinstalls(tree: Path, source: str) -> None:
    set_up(tree)
    with (tree / source).open("a") as edited:
        edited.write("# edited\n")
    assert installs(set_up(tree)) == ["python -m pip install -q --upgrade pip", "python -m pip install -q -e .[test]"]


def test_a_missing_built_module_reinstalls(tree: Path) -> None:
    set_up(tree)
    next((tree / "geo").glob("distance.*.so")).unlink()
    assert "python -m pip install -q -e .[test]" in set_up(tree)


def test_a_failed_install_is_tried_again(tree: Path) -> None:
    _executable(tree / ".venv" / "bin" / "python", FAKE_PYTHON + 'case "$*" in *" -e "*) exit 1 ;; esac\n')
    with pytest.raises(subprocess.CalledProcessError):
        set_up(tree)
    _executable(tree / ".venv" / "bin" / "python", FAKE_PYTHON)
    assert "python -m pip install -q -e .[test]" in set_up(tree)


def test_an_edited_widget_source_rebuilds_without_npm_ci(tree: Path) -> None:
    set_up(tree)
    (tree / "widget" / "src" / "main.ts").write_text("export const edited = 1;\n")
    assert installs(set_up(tree)) == ["npm run --silent build"]


def test_an_edited_tsconfig_rebuilds_the_widget(tree: Path) -> None:
    set_up(tree)
    (tree / "widget" / "tsconfig.json").write_text('{"compilerOptions": {"jsx": "preserve"}}')
    assert installs(set_up(tree)) == ["npm run --silent build"]


def test_a_changed_lockfile_reinstalls_npm_packages_and_rebuilds(tree: Path) -> None:
    set_up(tree)
    (tree / "widget" / "package-lock.json").write_text('{"lockfileVersion": 3}')
    assert installs(set_up(tree)) == ["npm ci --no-audit --no-fund --loglevel=error", "npm run --silent build"]


def test_a_wiped_build_output_is_built_again(tree: Path) -> None:
    set_up(tree)
    shutil.rmtree(tree / "widget" / "dist")
    assert installs(set_up(tree)) == ["npm run --silent build"]


def test_the_chart_library_is_installed_once_and_again_when_wiped_or_relocked(tree: Path) -> None:
    # This npm's build copies the library as backoffice/package.json's does.
    copying = FAKE_NPM.replace("run) ", "run) mkdir -p static/vendor && touch static/vendor/uPlot.iife.min.js; ")
    _executable(tree.parent / "bin" / "npm", copying)
    office = tree / "backoffice"
    office.mkdir()
    (office / "package.json").write_text('{"dependencies": {"uplot": "1.6.32"}}')
    (office / "package-lock.json").write_text("{}")
    both = ["npm ci --no-audit --no-fund --loglevel=error", "npm run --silent build"]
    assert installs(set_up(tree, "setup_backoffice")) == both
    assert set_up(tree, "setup_backoffice") == []
    shutil.rmtree(office / "static" / "vendor")
    assert installs(set_up(tree, "setup_backoffice")) == both
    (office / "package-lock.json").write_text('{"lockfileVersion": 3}')
    assert installs(set_up(tree, "setup_backoffice")) == both
