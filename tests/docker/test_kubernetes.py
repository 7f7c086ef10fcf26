"""docker/kubernetes/, proven without a cluster: every overlay rendered by `kubectl kustomize` and validated
strictly against Kubernetes' schemas, the API's probes, drain, limits and hardening read from the rendered
output, and the alert rules checked and unit-tested by promtool.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_files import KUBERNETES, OVERLAYS, render_overlay, stage, tool

# The oldest minor still widely run when this was written; kubernetes-validate ships its schemas (offline).
KUBERNETES_VERSION = "1.33.0"
POD_KINDS = {"Deployment": ("spec", "template"), "Job": ("spec", "template"), "CronJob": ("spec", "jobTemplate")}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {overlay: [d for d in yaml.safe_load_all(render_overlay(overlay)) if d] for overlay in OVERLAYS}


def _one(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    template = document
    for key in POD_KINDS[document["kind"]]:
        template = template[key]
    if document["kind"] == "CronJob":
        template = template["spec"]["template"]
    spec = template["spec"]
    assert isinstance(spec, dict)
    return spec


def _api(documents: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    deployment = _one(documents, "Deployment", "nearcart-api")
    return deployment, _pod_spec(deployment)["containers"][0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates_strictly(overlay: str, tmp_path: Path) -> None:
    manifest = tmp_path / f"{overlay}.yaml"
    manifest.write_text(render_overlay(overlay))
    result = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, str(manifest)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # A kind it has no schema for (a CRD) is only a warning there: here every resource must be checked.
    assert "Couldn't find schema" not in result.stdout + result.stderr
    assert result.stdout.count(" passed for resource ") == len([d for d in yaml.safe_load_all(manifest.read_text())])


def test_hpa_owns_the_api_replica_count_with_a_floor_and_ceiling_per_overlay(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    bounds = {}
    for overlay, documents in rendered.items():
        deployment, _ = _api(documents)
        assert "replicas" not in deployment["spec"], "an apply would reset what the HPA chose"
        hpa = _one(documents, "HorizontalPodAutoscaler", "nearcart-api")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nearcart-api"}
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
        bounds[overlay] = (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])
    assert bounds["staging"][0] < bounds["production"][0] and bounds["staging"][1] < bounds["production"][1]


def test_api_probes_and_drain(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for documents in rendered.values():
        deployment, api = _api(documents)
        port = api["ports"][0]
        assert api["command"][-2:] == ["--port", str(port["containerPort"])]
        paths = {probe: (api[probe]["httpGet"]["path"], api[probe]["httpGet"]["port"]) for probe in (
            "startupProbe", "readinessProbe", "livenessProbe")}
        assert paths == {
            "startupProbe": ("/readyz", port["name"]),
            "readinessProbe": ("/readyz", port["name"]),
            "livenessProbe": ("/healthz", port["name"]),
        }
        # The load balancer stops sending during the pause; the drain follows, within the grace period.
        pause = api["lifecycle"]["preStop"]["exec"]["command"]
        assert pause[0] == "sleep" and 0 < int(pause[1]) < _pod_spec(deployment)["terminationGracePeriodSeconds"]
        assert {e["name"]: e.get("value") for e in api["env"]}["NEARCART_AGGREGATE_EVENTS"] == "0"


def test_every_pod_is_hardened_and_bounded(rendered: dict[str, list[dict[str, Any]]]) -> None:
    uid, gid = (int(part) for part in stage("api").all("USER")[-1].args.split(":"))
    for documents in rendered.values():
        pods = [d for d in documents if d["kind"] in POD_KINDS]
        assert {d["metadata"]["name"] for d in pods} >= {"nearcart-api", "nearcart-aggregator", "nearcart-migrate"}
        for document in pods:
            spec = _pod_spec(document)
            name = document["metadata"]["name"]
            assert spec["securityContext"]["runAsNonRoot"] is True, name
            ids = [spec["securityContext"][key] for key in ("runAsUser", "runAsGroup", "fsGroup")]
            assert ids == [uid, gid, gid], f"{name}: not the image's USER (owner of its data folder)"
            tmp_volumes = {m["name"] for c in spec["containers"] for m in c["volumeMounts"] if m["mountPath"] == "/tmp"}
            assert all("emptyDir" in v for v in spec["volumes"] if v["name"] in tmp_volumes) and tmp_volumes, name
            for container in spec["containers"]:
                context = container["securityContext"]
                assert context["readOnlyRootFilesystem"] is True, name
                assert context["allowPrivilegeEscalation"] is False, name
                assert context["capabilities"]["drop"] == ["ALL"], name
                for bound in ("requests", "limits"):
                    assert set(container["resources"][bound]) == {"cpu", "memory"}, f"{name}: {bound}"


def test_workers_run_the_aggregator_and_the_migration(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for documents in rendered.values():
        aggregator = _pod_spec(_one(documents, "Deployment", "nearcart-aggregator"))["containers"][0]
        assert aggregator["command"] == ["nearcart", "events", "aggregate"]
        migrate = _pod_spec(_one(documents, "Job", "nearcart-migrate"))
        assert migrate["containers"][0]["command"] == ["nearcart", "db", "migrate"]
        assert migrate["restartPolicy"] == "Never"
        # docker/README.md applies the migration first with `-l 'app.kubernetes.io/component in (config,
        # migrate)'`: that selection holds the Job and every ConfigMap it reads, and nothing else.
        selected = {
            (d["kind"], d["metadata"]["name"]) for d in documents
            if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") in ("config", "migrate")
        }
        reads = {("ConfigMap", e["configMapRef"]["name"]) for e in migrate["containers"][0]["envFrom"]}
        assert selected == {("Job", "nearcart-migrate")} | reads


def test_every_nearcart_pod_follows_the_sentinels(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """API, aggregator, migration Job and CronJobs read the Redis primary and its Sentinels from one ConfigMap,
    so each follows a failover; none overrides them."""
    redis_settings = {"NEARCART_REDIS_URL", "NEARCART_REDIS_SENTINELS", "NEARCART_REDIS_SENTINEL_MASTER"}
    for overlay, documents in rendered.items():
        config = {d["metadata"]["name"]: d["data"] for d in documents if d["kind"] == "ConfigMap"}
        pods = [d for d in documents if d["kind"] in POD_KINDS]
        assert len(pods) == 5, overlay  # api, aggregator, migrate, feeds-pull, quality-check
        for document in pods:
            for container in _pod_spec(document)["containers"]:
                given: dict[str, str] = {}
                for source in container["envFrom"]:
                    given |= config[source["configMapRef"]["name"]]
                name = f"{overlay}: {document['metadata']['name']}"
                assert redis_settings <= given.keys(), name
                assert len(given["NEARCART_REDIS_SENTINELS"].split(",")) == 3, name
                assert not redis_settings & {entry["name"] for entry in container.get("env", [])}, name


def test_cronjobs_pull_feeds_and_check_quality_one_run_at_a_time(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for documents in rendered.values():
        jobs = {d["metadata"]["name"]: d for d in documents if d["kind"] == "CronJob"}
        commands = {name: _pod_spec(job)["containers"][0]["command"] for name, job in jobs.items()}
        assert commands == {
            "nearcart-feeds-pull": ["nearcart", "feeds", "pull"],
            "nearcart-quality-check": ["nearcart", "quality", "check"],
        }
        for job in jobs.values():
            assert job["spec"]["concurrencyPolicy"] == "Forbid"
            assert _pod_spec(job)["restartPolicy"] == "Never"
        # Only these pods may reach retailers' https hosts; the API's pods may not.
        for job in jobs.values():
            assert 443 in _egress_ports(documents, job["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"])
        deployment, _ = _api(documents)
        assert 443 not in _egress_ports(documents, deployment["spec"]["template"]["metadata"]["labels"])


def _egress_ports(documents: list[dict[str, Any]], labels: dict[str, str]) -> list[int]:
    """Every port the NetworkPolicies selecting pods with these labels let them reach."""
    policies = [d for d in documents if d["kind"] == "NetworkPolicy"]
    return [port["port"] for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
            for rule in p["spec"].get("egress", []) for port in rule["ports"]]


def test_secrets_are_referenced_by_name_never_written(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for documents in rendered.values():
        assert not [d for d in documents if d["kind"] == "Secret"]
        config_maps = {d["metadata"]["name"] for d in documents if d["kind"] == "ConfigMap"}
        for document in (d for d in documents if d["kind"] in POD_KINDS):
            for container in _pod_spec(document)["containers"]:
                for entry in container["env"]:
                    if "SECRET" in entry["name"] or entry["name"] == "NEARCART_DATABASE_URL":
                        assert entry["valueFrom"]["secretKeyRef"]["name"] == "nearcart-secrets", entry
                # The generated ConfigMap's hashed name reached every reference.
                assert {e["configMapRef"]["name"] for e in container["envFrom"]} <= config_maps
        for config_map in (d for d in documents if d["kind"] == "ConfigMap"):
            assert not any("SECRET" in key or "PASSWORD" in key for key in config_map["data"])


def test_overlays_differ_in_image_tag_resources_and_settings(rendered: dict[str, list[dict[str, Any]]]) -> None:
    images, resources, settings = {}, {}, {}
    for overlay, documents in rendered.items():
        _, api = _api(documents)
        name, _, tag = api["image"].partition(":")
        assert name == "nearcart" and tag
        images[overlay], resources[overlay] = tag, api["resources"]
        config = next(d for d in documents if d["metadata"]["name"].startswith("nearcart-config-"))
        settings[overlay] = config["data"]
        assert {d["metadata"].get("namespace") for d in documents} == {
            "nearcart-staging" if overlay == "staging" else "nearcart"
        }
    assert images["staging"] != images["production"]
    assert resources["staging"] != resources["production"]
    assert settings["staging"]["NEARCART_PUBLIC_URL"] != settings["production"]["NEARCART_PUBLIC_URL"]


def test_service_pdb_and_network_policies_select_the_api_pods(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for documents in rendered.values():
        deployment, api = _api(documents)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        service = _one(documents, "Service", "nearcart-api")
        assert service["spec"]["selector"].items() <= labels.items()
        assert service["spec"]["ports"][0]["targetPort"] == api["ports"][0]["name"]
        budget = _one(documents, "PodDisruptionBudget", "nearcart-api")
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
        policies = [d for d in documents if d["kind"] == "NetworkPolicy"]
        selecting = [p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()]
        assert {t for p in selecting for t in p["spec"]["policyTypes"]} == {"Ingress", "Egress"}
        ingress = [rule for p in selecting for rule in p["spec"].get("ingress", [])]
        allowed_in = [port["port"] for rule in ingress for port in rule["ports"]]
        assert allowed_in == [api["ports"][0]["containerPort"]]


def test_alert_rules_are_valid_and_fire_at_their_thresholds(rendered: dict[str, list[dict[str, Any]]]) -> None:
    rules_file = KUBERNETES / "base" / "alerts.rules.yaml"
    for documents in rendered.values():
        shipped = _one(documents, "ConfigMap", "nearcart-alert-rules")["data"]["alerts.rules.yaml"]
        assert shipped == rules_file.read_text()
    groups = yaml.safe_load(rules_file.read_text())["groups"]
    rules = {rule["alert"]: rule for group in groups for rule in group["rules"]}
    assert set(rules) == {"NearcartFeedStale", "NearcartBasketLinksFailing", "NearcartFeedRowsRejected"}
    for rule in rules.values():
        assert rule["labels"]["severity"] and rule["annotations"]["summary"] and rule["for"]
    promtool = tool("promtool")
    check = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # Series above, at and below each threshold, exported by two pods (tests/docker/alerts_test.yaml).
    unit = subprocess.run(
        [promtool, "test", "rules", str(Path(__file__).parent / "alerts_test.yaml")], capture_output=True, text=True
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr
