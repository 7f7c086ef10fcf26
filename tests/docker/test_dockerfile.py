"""docker/Dockerfile, proven without an engine: hadolint, the build context, the same build steps as ./run, the
final stage's user, health check and command, and where the built widget lands.
"""

from __future__ import annotations

import http.server
import json
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

from deploy_files import (
    DOCKER,
    ROOT,
    Stage,
    dockerfile_stages,
    dockerignore_rules,
    in_build_context,
    stage,
    tool,
    tracked_files,
)

from cache.embedded import free_port

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _shell_function(name: str) -> str:
    """The body of `name() { ... }` in ./run."""
    found = re.search(rf"^{name}\(\) \{{\n(.*?)^\}}", (ROOT / "run").read_text(), re.M | re.S)
    assert found, f"./run has no {name}()"
    return found.group(1)


def _command(line: str) -> list[str]:
    """A shell line's first command as words: `a -q x || return` → ["a", "-q", "x"]."""
    words = shlex.split(line, comments=True)
    ends = [n for n, word in enumerate(words) if word in ("||", "&&", ";", "|") or word.startswith(">")]
    return words[: ends[0]] if ends else words


def _context_sources(stages: list[Stage]) -> list[str]:
    """Every COPY/ADD source read from the build context (a --from source comes from a stage instead)."""
    sources = []
    for each in stages:
        for instruction in each.all("COPY") + each.all("ADD"):
            flags, words = instruction.flags_and_words()
            if "from" not in flags:
                sources += words[:-1]
    return sources


def test_hadolint_finds_nothing_and_every_ignore_is_explained() -> None:
    dockerfile = DOCKER / "Dockerfile"
    result = subprocess.run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "style", str(dockerfile)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = dockerfile.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            before = lines[number - 1].strip() if number else ""
            assert before.startswith("#") and "hadolint" not in before, f"line {number + 1}: ignore without a reason"


def test_every_copy_source_exists_and_is_sent_in_the_context() -> None:
    rules = dockerignore_rules()
    sources = _context_sources(dockerfile_stages())
    assert sources, "the Dockerfile copies nothing from the context"
    for source in sources:
        path = (ROOT / source).resolve()
        assert path.exists(), f"COPY {source}: not in the repository"
        relative = path.relative_to(ROOT).as_posix()
        if relative == ".":
            continue
        assert in_build_context(relative, rules), f"COPY {source}: excluded by .dockerignore"
        if path.is_dir():
            # A folder copied for a build step (widget/): every file of it must reach the image.
            left_out = [name for name in tracked_files(relative) if not in_build_context(name, rules)]
            assert not left_out, f"COPY {source}: .dockerignore drops {left_out}"


def test_pip_install_finds_every_package_and_its_data_in_the_context() -> None:
    # The build stage copies the whole context (`COPY . .`): prove what `pip install .` reads survives
    # .dockerignore, and that it leaves out what must not ship (tests, local secrets, build output).
    rules = dockerignore_rules()
    setuptools = PYPROJECT["tool"]["setuptools"]
    needed = ["pyproject.toml", "setup.py", PYPROJECT["project"]["readme"]]
    for package in setuptools["packages"]:
        needed += [name for name in tracked_files(package) if name.endswith(".py")]
    for package, globs in setuptools["package-data"].items():
        for pattern in globs:
            needed += [p.relative_to(ROOT).as_posix() for p in (ROOT / package).glob(pattern) if p.is_file()]
    # What another stage builds into the build stage (the chart library) is not read from the context.
    built = [words[-1].rstrip("/") + "/" for flags, words in (i.flags_and_words() for i in stage("build").all("COPY"))
             if flags.get("from")]
    missing = [name for name in needed if not in_build_context(name, rules) and not name.startswith(tuple(built))]
    assert not missing, f".dockerignore drops what pip install . needs: {missing}"
    for kept_out in ("tests/conftest.py", "docker/.env", ".venv/bin/python", "widget/node_modules/x", "edge_api/x.so"):
        assert not in_build_context(kept_out, rules), f"{kept_out} would be sent to the builder"


def _same_npm_steps(function: str, stage_name: str, folder: str) -> Stage:
    """./run's `function` and the image's stage run the same npm commands in the same folder; the stage."""
    setup = _shell_function(function)
    run_npm = [" ".join(shlex.split(c)) for c in re.findall(r"\bnpm [^&|;)\n]+", setup)]
    built = stage(stage_name)
    image_npm = [" ".join(shlex.split(c)) for c in built.run_commands() if c.startswith("npm ")]
    assert run_npm and image_npm == run_npm
    assert f"cd {folder}" in setup and built.workdir().endswith(f"/{folder}")
    return built


def test_widget_is_built_with_the_commands_of_run_setup() -> None:
    # ./run's setup_widget: `cd widget && npm ci ... && npm run ... build`.
    _same_npm_steps("setup_widget", "widget", "widget")


def test_chart_library_is_copied_with_the_commands_of_run_setup_before_the_install() -> None:
    # ./run's setup_backoffice: `cd backoffice && npm ci ... && npm run ... build` (uPlot into static/vendor/).
    office = _same_npm_steps("setup_backoffice", "office", "backoffice")
    build_script = json.loads((ROOT / "backoffice" / "package.json").read_text())["scripts"]["build"]
    assert "static/vendor" in build_script and "uPlot.iife.min.js" in build_script
    # The build stage puts the copy where pyproject's package data takes it from, before `pip install .`.
    build = stage("build")
    copies = [words for flags, words in (i.flags_and_words() for i in build.all("COPY"))
              if flags.get("from") == "office"]
    assert copies == [[office.workdir() + "/static/vendor", "backoffice/static/vendor"]]
    assert "static/vendor/*" in PYPROJECT["tool"]["setuptools"]["package-data"]["backoffice"]
    order = [i.args for i in build.instructions if i.keyword in ("COPY", "RUN")]
    vendor = next(n for n, args in enumerate(order) if "--from=office" in args)
    assert vendor < next(n for n, args in enumerate(order) if "pip install" in args)


def test_python_venv_is_installed_as_run_setup_does_minus_editable_and_test_extras() -> None:
    setup = _shell_function("setup_python")
    run_install = next(_command(line) for line in setup.splitlines() if "-e" in _command(line))
    assert "-m" in run_install and "venv" in setup
    build = stage("build")
    assert any(re.fullmatch(r"python -m venv (\S+)", c) for c in build.run_commands())
    image_install = next(shlex.split(c) for c in build.run_commands() if "-m pip install" in c)
    # Same tool, same project: the checkout root (./run's `.[test]`, editable) against the copied context
    # root in the stage's WORKDIR (`.`). The image drops only the editable flag and the test extras.
    assert image_install[0].endswith("/bin/python") and image_install[1:4] == ["-m", "pip", "install"]
    run_targets = [w for w in run_install[4:] if not w.startswith("-")]
    image_targets = [w for w in image_install[4:] if not w.startswith("-")]
    assert [t.split("[")[0] for t in run_targets] == image_targets == ["."]
    # Flags that only quieten or skip a cache: none changes what gets installed.
    harmless = {"-q", "--quiet", "--no-cache-dir", "--disable-pip-version-check"}
    assert {w for w in image_install[4:] if w.startswith("-")} <= harmless
    copy_all = [i for i in build.all("COPY") if i.flags_and_words()[1] == [".", "."]]
    assert copy_all, "the build stage must copy the context root into its WORKDIR"


def test_final_stage_is_slim_non_root_with_a_healthcheck_and_serves() -> None:
    stages = dockerfile_stages()
    final = stages[-1]
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", final.image)
    users = final.all("USER")
    assert users, "the final stage runs as root"
    uid = users[-1].args.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "USER must be a numeric non-root uid (Kubernetes checks it)"
    healthcheck = final.all("HEALTHCHECK")
    assert len(healthcheck) == 1
    probe = healthcheck[0].args.split(" CMD ", 1)[1].strip()
    command = shlex.split(probe) if not probe.startswith("[") else json.loads(probe)
    assert command[:2] == ["python", "-c"] and "urllib.request.urlopen" in command[2]
    assert "http://127.0.0.1:8000/healthz" in command[2]
    cmd = final.all("CMD")[-1].exec_form
    assert cmd == ["nearcart", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert "8000" in [e.args for e in final.all("EXPOSE")]


def _healthcheck_code() -> str:
    probe = stage("api").all("HEALTHCHECK")[0].args.split(" CMD ", 1)[1].strip()
    return str(json.loads(probe)[2])


def test_healthcheck_command_passes_only_when_healthz_answers() -> None:
    # The image's own command, pointed at a port of ours: 200 passes; a 503 and a refused connection fail.
    status = {"code": 200}

    class Healthz(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status["code"] if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    port = free_port()
    code = _healthcheck_code().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    assert str(port) in code

    def check() -> int:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30).returncode

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert check() == 0
        status["code"] = 503
        assert check() != 0
    finally:
        server.shutdown()
        server.server_close()
    assert check() != 0


def test_every_base_image_is_pinned_by_tag() -> None:
    for each in dockerfile_stages():
        name, _, tag = each.image.partition(":")
        assert tag and tag != "latest", f"FROM {each.image}: pin a tag"


def test_final_stage_serves_the_widget_from_where_the_build_wrote_it() -> None:
    # edge_api.pages.widget_dir: an installed package has no widget/dist beside it, so NEARCART_WIDGET_DIR
    # must name the folder the widget stage's build output was copied to.
    widget_dist = stage("widget").workdir() + "/dist"
    build_script = (ROOT / "widget" / "scripts" / "build.mjs").read_text()
    assert 'new URL("../dist/", import.meta.url)' in build_script, "build.mjs no longer writes widget/dist"
    for name in ("api", "cdn"):
        each = stage(name)
        copies = [i.flags_and_words() for i in each.all("COPY")]
        from_widget = [words for flags, words in copies if flags.get("from") == "widget"]
        destinations = [words[-1] for words in from_widget if words[0] == widget_dist]
        assert destinations == [each.env()["NEARCART_WIDGET_DIR"]], name
    assert dockerfile_stages()[-1].name == "api", "the API image is the default (last) target"


def test_root_filesystem_can_be_read_only() -> None:
    final = stage("api")
    env = final.env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    volumes = [v for i in final.all("VOLUME") for v in json.loads(i.args)]
    assert env["NEARCART_DATA_DIR"] in volumes
    assert final.workdir() == env["NEARCART_DATA_DIR"], "relative paths would land on the read-only root"


def test_cdn_stage_renders_every_template_variable_and_has_nginx_paths() -> None:
    cdn = stage("cdn")
    env = cdn.env()
    template = (ROOT / "cdn" / "nginx.conf.template").read_text()
    wanted = set(re.findall(r"\$\{(\w+)\}", template))
    # The official image's entrypoint substitutes only the variables matching the filter.
    assert all(re.search(env["NGINX_ENVSUBST_FILTER"], name) for name in wanted)
    assert env["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/nginx"
    assert [i.flags_and_words()[1] for i in cdn.all("COPY") if "templates" in i.args] == [
        ["cdn/nginx.conf.template", "/etc/nginx/templates/nginx.conf.template"]
    ]
    # NEARCART_API_UPSTREAM is the deployment's (compose gives it: tests/docker/test_compose.py).
    assert wanted - set(env) == {"NEARCART_API_UPSTREAM"}
    # nginx creates only the last level of its temp and cache paths (relative to its prefix, /etc/nginx).
    relative = re.findall(r"^\s*(?:\w+_temp_path|proxy_cache_path)\s+([^/\s]\S*)", template, re.M)
    parents = {"/etc/nginx/" + Path(path).parent.as_posix() for path in relative}
    made = {word for command in cdn.run_commands() if command.startswith("mkdir") for word in command.split()}
    assert relative and parents <= made
