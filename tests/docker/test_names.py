"""The deployment files speak nearcart's language: each `NEARCART_*` variable they set is one nearcart reads, each
`nearcart ...` command they run exists. A misspelt variable is silently ignored by the settings loader, so
the deployment would run on a default nobody chose.
"""

from __future__ import annotations

from typing import Any

import click
import yaml
from deploy_files import OVERLAYS, load_compose, render_overlay, stage

from edge_api.cli import main
from edge_api.settings import PREFIX, Settings

# SPEC "Deployment" names these; they are being built in parallel and join Settings and the CLI on merge.
PENDING_SETTINGS: set[str] = set()
PENDING_COMMANDS = {"events aggregate"}


def _commands(group: click.Group, prefix: str = "") -> set[str]:
    found = set()
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        found |= _commands(command, path + " ") if isinstance(command, click.Group) else {path}
    return found


def _deployed() -> tuple[set[str], list[list[str]]]:
    """(every NEARCART_* name the API image, compose and each overlay set; every nearcart command they run)."""
    names = {key for key in stage("api").env() if key.startswith(PREFIX)}
    commands = [stage("api").all("CMD")[-1].exec_form or []]
    for service in load_compose()["services"].values():
        if service.get("build", {}).get("target") == "api":
            names |= set(service["environment"])
            commands.append(service["command"])
    for overlay in OVERLAYS:
        documents: list[dict[str, Any]] = [d for d in yaml.safe_load_all(render_overlay(overlay)) if d]
        for document in documents:
            if document["kind"] == "ConfigMap" and document["metadata"]["name"].startswith("nearcart-config"):
                names |= set(document["data"])
            spec = document.get("spec", {})
            spec = spec["jobTemplate"]["spec"] if "jobTemplate" in spec else spec  # a CronJob's pods
            template = spec.get("template", {}).get("spec", {})
            for container in template.get("containers", []):
                names |= {entry["name"] for entry in container.get("env", [])}
                commands.append(container["command"])
    return names, commands


def test_every_nearcart_variable_set_is_a_setting_and_every_command_exists() -> None:
    names, commands = _deployed()
    settings = {PREFIX + field.upper() for field in Settings.__struct_fields__}
    unknown = names - settings - PENDING_SETTINGS
    assert names and not unknown, f"not read by nearcart: {unknown}"
    known = _commands(main) | PENDING_COMMANDS
    for command in commands:
        assert command[0] == "nearcart", command
        words = [word for word in command[1:] if not word.startswith("-")]
        assert any(" ".join(words[:n]) in known for n in (1, 2)), f"no such command: {command}"
