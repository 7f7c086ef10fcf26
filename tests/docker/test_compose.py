"""docker/compose.yaml, proven without an engine: the Compose specification's schema, and that the services
name each other rightly (upstreams, Sentinels, replicas, migration order) with no secret written in the file.
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from deploy_files import COMPOSE_FILE, DOCKER, ROOT, in_build_context, load_compose, stage, tool
from redis import Redis
from redis.exceptions import RedisError

from cache.embedded import free_port, redis_server_binary, start_redis

SECRET_NAMES = re.compile(r"SECRET|PASSWORD|DATABASE_URL")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = compose["services"]
    assert isinstance(services, dict)
    return services


def _nearcart(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services running the nearcart image (built from the Dockerfile's API target)."""
    return {
        name: service for name, service in _services(compose).items()
        if service.get("build", {}).get("target") == "api"
    }


def test_compose_file_follows_the_compose_specification() -> None:
    # The schema ships inside check-jsonschema: this runs offline.
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_two_api_replicas_and_one_dedicated_aggregator(compose: dict[str, Any]) -> None:
    nearcart = _nearcart(compose)
    commands = {name: service["command"] for name, service in nearcart.items()}
    api = [n for n, c in commands.items() if c[:2] == ["nearcart", "serve"]]
    aggregators = [n for n, c in commands.items() if c == ["nearcart", "events", "aggregate"]]
    assert len(api) == 1 and nearcart[api[0]]["deploy"]["replicas"] == 2
    assert nearcart[api[0]]["environment"]["NEARCART_AGGREGATE_EVENTS"] == "0"
    assert len(aggregators) == 1
    assert nearcart[aggregators[0]]["environment"].get("NEARCART_AGGREGATE_EVENTS", "1") != "0"


def test_database_users_wait_for_the_one_shot_migration(compose: dict[str, Any]) -> None:
    nearcart = _nearcart(compose)
    migrate = [n for n, s in nearcart.items() if s["command"] == ["nearcart", "db", "migrate"]]
    assert len(migrate) == 1
    assert nearcart[migrate[0]]["restart"] == "no"
    database = nearcart[migrate[0]]["depends_on"]
    assert {name: dep["condition"] for name, dep in database.items()} == {"postgres": "service_healthy"}
    for name, service in nearcart.items():
        if name != migrate[0]:
            condition = service["depends_on"][migrate[0]]["condition"]
            assert condition == "service_completed_successfully", name


def test_nginx_of_cdn_proxies_to_the_api_replicas(compose: dict[str, Any]) -> None:
    services = _services(compose)
    cdn = services["cdn"]
    assert cdn["build"]["target"] == "cdn"
    # With the cdn stage's ENV, every ${NEARCART_*} of the template gets a value at start.
    template = (ROOT / "cdn" / "nginx.conf.template").read_text()
    given = set(stage("cdn").env()) | set(cdn["environment"])
    assert set(re.findall(r"\$\{(\w+)\}", template)) <= given
    host, _, port = cdn["environment"]["NEARCART_API_UPSTREAM"].partition(":")
    api = services[host]
    assert api["command"][api["command"].index("--port") + 1] == port
    assert cdn["depends_on"][host]["condition"] == "service_healthy"
    # The API believes X-Forwarded-For from the nginx container only: its address is in the trusted range.
    trusted = ipaddress.IPv4Network(api["environment"]["NEARCART_TRUSTED_PROXIES"])
    subnet = ipaddress.IPv4Network(compose["networks"]["default"]["ipam"]["config"][0]["subnet"])
    address = ipaddress.IPv4Address(cdn["networks"]["default"]["ipv4_address"])
    assert address in trusted and trusted.subnet_of(subnet)
    published = [name for name, service in services.items() if service.get("ports")]
    assert published == ["cdn"], "only the CDN is reachable from outside"


def test_redis_primary_replica_and_three_sentinels_are_the_ones_nearcart_is_given(compose: dict[str, Any]) -> None:
    services = _services(compose)
    env = services["api"]["environment"]
    primary = re.fullmatch(r"redis://([\w-]+):6379/0", env["NEARCART_REDIS_URL"])
    assert primary and services[primary.group(1)]["command"][0] == "redis-server"
    for url in env["NEARCART_REDIS_REPLICA_URLS"].split(","):
        replica = re.fullmatch(r"redis://([\w-]+):6379/0", url)
        assert replica
        command = services[replica.group(1)]["command"]
        at = command.index("--replicaof")
        assert command[at + 1 : at + 3] == [primary.group(1), "6379"]
    sentinels = env["NEARCART_REDIS_SENTINELS"].split(",")
    assert len(sentinels) == 3
    master = env["NEARCART_REDIS_SENTINEL_MASTER"]
    for entry in sentinels:
        host, _, port = entry.partition(":")
        script = services[host]["command"][-1]
        assert f"port {port}" in script and "--sentinel" in script
        # Written at start (Sentinel rewrites its file); quorum 2 of 3.
        assert f"sentinel monitor {master} {primary.group(1)} 6379 2" in script
        assert services[host]["environment"]["SENTINEL_HOSTNAME"] == host


def test_every_nearcart_process_follows_the_same_sentinels(compose: dict[str, Any]) -> None:
    """The aggregator and the commands run in the migrate service (ingest, index build) follow a failover
    as the API does: same primary, same Sentinels; the long-lived ones start once the Sentinels have."""
    services = _services(compose)
    redis_settings = ("NEARCART_REDIS_URL", "NEARCART_REDIS_SENTINELS", "NEARCART_REDIS_SENTINEL_MASTER")
    api = services["api"]["environment"]
    sentinels = {entry.partition(":")[0] for entry in api["NEARCART_REDIS_SENTINELS"].split(",")}
    for name, service in _nearcart(compose).items():
        assert {key: service["environment"].get(key) for key in redis_settings} == {
            key: api[key] for key in redis_settings}, name
        if service["restart"] != "no":
            assert {s: service["depends_on"][s]["condition"] for s in sentinels} == dict.fromkeys(
                sentinels, "service_started"), name


def test_sentinel_start_script_writes_a_config_redis_sentinel_runs(compose: dict[str, Any], tmp_path: Path) -> None:
    # The compose command itself, run by sh against a redis-server of ours: only the addresses (compose's
    # host names, the image's /data and entrypoint) are swapped for this machine's.
    primary = start_redis(tmp_path / "primary")
    sentinel_port = free_port()
    script = _services(compose)["sentinel-1"]["command"][-1]
    assert "$" not in script.replace("$$", ""), "a lone $ is compose's to interpolate, not the shell's"
    script = script.replace("$$", "$")
    for compose_value, here in (
        ("/data/", f"{tmp_path}/"),
        ("redis-primary 6379", f"127.0.0.1 {primary.port}"),
        ("port 26379", f"port {sentinel_port}"),
        ("docker-entrypoint.sh redis-server", redis_server_binary()),
    ):
        assert compose_value in script
        script = script.replace(compose_value, here)
    env = {"PATH": os.environ["PATH"], "SENTINEL_HOSTNAME": "127.0.0.1"}
    sentinel = subprocess.Popen(["sh", "-c", script], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = Redis(port=sentinel_port, socket_timeout=2)
        deadline = time.monotonic() + 20
        while True:
            try:
                master = client.execute_command("SENTINEL", "get-master-addr-by-name", "nearcart")  # type: ignore[no-untyped-call]
                break
            except RedisError:
                assert sentinel.poll() is None, "redis-sentinel refused the config the script wrote"
                assert time.monotonic() < deadline
                time.sleep(0.1)  # polling a starting server
        assert [part.decode() for part in master] == ["127.0.0.1", str(primary.port)]
        # Sentinel rewrote the file it was given: it is writable where the script put it.
        assert "Generated by CONFIG REWRITE" in (tmp_path / "sentinel.conf").read_text()
    finally:
        sentinel.terminate()
        sentinel.wait(timeout=10)
        primary.stop()


def test_postgresql_keeps_its_data_in_a_named_volume(compose: dict[str, Any]) -> None:
    postgres = _services(compose)["postgres"]
    volume, _, path = postgres["volumes"][0].partition(":")
    assert path == "/var/lib/postgresql/data" and volume in compose["volumes"]


def test_nearcart_containers_run_with_a_read_only_root(compose: dict[str, Any]) -> None:
    for name, service in _nearcart(compose).items():
        assert service["read_only"] is True and "/tmp" in service["tmpfs"], name
        assert service["cap_drop"] == ["ALL"], name


def test_no_secret_is_written_in_the_compose_file(compose: dict[str, Any]) -> None:
    required = set()
    for name, service in _services(compose).items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAMES.search(key):
                # Only ${VAR:?...} references: compose refuses to start when docker/.env lacks them.
                references = re.findall(r"\$\{(\w+):\?", str(value))
                assert references, f"{name}: {key} holds a value, not a ${{...:?}} reference"
                literal = re.sub(r"\$\{[^}]*\}", "", str(value))
                assert not re.search(r":[^/@]+@", literal), f"{name}: {key} has a password written in it"
                required |= set(references)
    example = (DOCKER / "env.example").read_text()
    assert required == {"POSTGRES_PASSWORD", "NEARCART_SECRET"}
    assert all(re.search(rf"^{name}=", example, re.M) for name in required), "docker/env.example lacks one"
    # The real file stays out of git and out of the image's build context.
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "docker/.env"])
    assert ignored.returncode == 0 and not in_build_context("docker/.env")
