"""The deploy files, checked here since no container or cluster runs on the test machines.

Kubernetes manifests against the Kubernetes API schema; every command against packmatch's own CLI;
every setting against `Settings`; every metric a dashboard panel or an alert names against what
packmatch and Dramatiq export; the systemd units with `systemd-analyze verify` where it exists.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq.middleware.prometheus as dramatiq_prometheus
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from packmatch.cli import _parser
from packmatch.domain.monitoring import QueueDepth, RunsInFlight
from packmatch.metrics import PrometheusMetrics, StateCollector, metrics_registry
from packmatch.services.ports import utcnow
from packmatch.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.30.0"
SETTINGS = {f"PACKMATCH_{name.upper()}" for name in Settings.model_fields}


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in documents(path):
            yield f"{path.name}:{doc['kind']}/{doc['metadata'].get('name', '')}", doc


def by_kind(kind: str, name: str) -> dict[str, Any]:
    return next(doc for _, doc in manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name)


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"] if doc["kind"] in ("Deployment", "Job") else {}
    return list(spec.get("containers", []))


def assert_packmatch_command(argv: list[str]) -> None:
    """The command parses with packmatch's CLI (argparse exits on anything it does not know)."""
    assert argv[0] == "packmatch", argv
    try:
        _parser().parse_args(argv[1:])
    except SystemExit as exc:  # pragma: no cover - the assertion below reports it
        raise AssertionError(f"not a packmatch command: {argv}") from exc


# --- Kubernetes ---------------------------------------------------------------------------------

# Kubernetes' own API groups (v1, apps/v1, batch/v1); KEDA's ScaledObject is a custom resource.
CORE = [(name, doc) for name, doc in manifests() if "." not in doc["apiVersion"].split("/")[0]]


@pytest.mark.parametrize(("name", "doc"), CORE, ids=[name for name, _ in CORE])
def test_kubernetes_manifests_match_the_api_schema(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    [kustomization] = documents(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


def test_every_container_runs_a_packmatch_command_as_non_root_on_a_read_only_root() -> None:
    found = [(doc, c) for _, doc in manifests() for c in containers(doc)]
    assert len(found) == 4  # api, worker, webhooks, migrate
    for doc, container in found:
        assert_packmatch_command(container["command"])
        assert doc["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        refs = [
            source.get("configMapRef", source.get("secretRef"))["name"] for source in container["envFrom"]
        ]
        assert refs == ["packmatch", "packmatch"]


def test_processes_that_write_temporary_files_get_a_writable_tmp() -> None:
    for name in ("packmatch-api", "packmatch-worker"):
        deployment = by_kind("Deployment", name)
        [container] = containers(deployment)
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]


def test_the_api_is_probed_on_healthz_and_readyz_at_the_port_it_listens_on() -> None:
    [api] = containers(by_kind("Deployment", "packmatch-api"))
    port = api["command"][api["command"].index("--port") + 1]
    assert [p["containerPort"] for p in api["ports"]] == [int(port)]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    service = by_kind("Service", "packmatch-api")
    assert (
        service["spec"]["selector"]
        == by_kind("Deployment", "packmatch-api")["spec"]["selector"]["matchLabels"]
    )


def test_workers_expose_their_metrics_where_prometheus_is_told_to_scrape() -> None:
    config = by_kind("ConfigMap", "packmatch")["data"]
    worker = by_kind("Deployment", "packmatch-worker")
    [container] = containers(worker)
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    port = config["PACKMATCH_WORKER_METRICS_PORT"]
    assert config["PACKMATCH_WORKER_METRICS_HOST"] == "0.0.0.0"
    assert annotations["prometheus.io/port"] == port
    assert [p["containerPort"] for p in container["ports"]] == [int(port)]


def test_workers_get_time_to_stop_gracefully() -> None:
    spec = by_kind("Deployment", "packmatch-worker")["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] >= 60


def test_keda_scales_the_worker_deployment_on_the_dramatiq_queue() -> None:
    scaled = by_kind("ScaledObject", "packmatch-worker")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert (
        scaled["spec"]["scaleTargetRef"]["name"]
        == by_kind("Deployment", "packmatch-worker")["metadata"]["name"]
    )
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == f"dramatiq:{Settings().queue_name}"
    broker = by_kind("ConfigMap", "packmatch")["data"]["PACKMATCH_BROKER_URL"]
    assert broker.endswith(f"/{trigger['metadata']['databaseIndex']}")


def test_configuration_names_only_real_settings() -> None:
    names = set(by_kind("ConfigMap", "packmatch")["data"]) | set(by_kind("Secret", "packmatch")["stringData"])
    example = DEPLOY / "packmatch.env.example"
    names |= {
        line.split("=", 1)[0] for line in example.read_text().splitlines() if "=" in line and line[0] != "#"
    }
    names |= set(compose()["x-packmatch"]["environment"])
    assert names <= SETTINGS, names - SETTINGS


# --- docker compose ------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_compose_runs_the_stack_with_migrations_first() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "api", "worker", "webhooks"} <= set(services)
    assert services["worker"]["command"][2:4] == ["--queues", "slots"]
    assert services["webhooks"]["command"][2:4] == ["--queues", "webhooks"]
    for name in ("migrate", "api", "worker", "webhooks"):
        assert_packmatch_command(services[name]["command"])
    assert services["migrate"]["command"][1] == "migrate"
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])


def test_compose_monitoring_mounts_files_that_exist() -> None:
    services = compose()["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
        for volume in services[name]["volumes"]:
            assert (DEPLOY / volume.split(":")[0]).exists(), volume


def test_prometheus_scrapes_the_compose_services_and_loads_the_alerts() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert [Path(f).name for f in config["rule_files"]] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["packmatch-api"]["static_configs"][0]["targets"] == ["api:8000"]
    assert jobs["packmatch-worker"]["dns_sd_configs"][0]["port"] == int(
        compose()["x-packmatch"]["environment"]["PACKMATCH_WORKER_METRICS_PORT"]
    )


# --- the image, the units, the Procfile -----------------------------------------------------------


def test_the_image_is_multi_stage_slim_and_runs_as_a_non_root_user() -> None:
    with (DEPLOY / "Dockerfile").open("rb") as dockerfile:
        parser = DockerfileParser(fileobj=dockerfile)
        structure = parser.structure
    stages = [i for i in structure if i["instruction"] == "FROM"]
    assert len(stages) >= 2
    assert stages[-1]["value"].split()[0].endswith("-slim")
    final = [i for i in structure if i["startline"] > stages[-1]["startline"]]
    [user] = [i["value"] for i in final if i["instruction"] == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    assert [i["value"] for i in final if i["instruction"] == "STOPSIGNAL"] == ["SIGTERM"]
    assert_packmatch_command(json.loads(next(i["value"] for i in final if i["instruction"] == "CMD")))


UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_systemd_units_verify(unit: Path, tmp_path: Path) -> None:
    """`systemd-analyze verify` with the install path pointed at this checkout's packmatch."""
    packmatch = str(Path(sys.executable).parent / "packmatch")
    text = unit.read_text().replace("/opt/packmatch/bin/packmatch", packmatch)
    text = text.replace("EnvironmentFile=/etc/packmatch/packmatch.env", "EnvironmentFile=-/dev/null")
    name = unit.name.replace("@.", "@9191.")
    (tmp_path / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / name)], capture_output=True, text=True
    )
    assert (result.returncode, result.stderr.strip()) == (0, "")


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_systemd_units_start_packmatch_commands(unit: Path) -> None:
    for line in unit.read_text().splitlines():
        if line.startswith(("ExecStart=", "ExecStartPre=")):
            argv = shlex.split(line.split("=", 1)[1].replace("%i", "9191"))
            assert_packmatch_command(["packmatch", *argv[1:]])


def test_procfile_processes_are_packmatch_commands() -> None:
    procfile = Path(__file__).resolve().parents[2] / "Procfile"
    processes = dict(line.split(": ", 1) for line in procfile.read_text().splitlines() if line.strip())
    assert {"release", "web", "worker", "webhooks"} == set(processes)
    assert "--queues slots" in processes["worker"]
    assert "--queues webhooks" in processes["webhooks"]
    for command in processes.values():
        expanded = re.sub(r"\$\{[A-Z_]+:-([^}]+)\}", r"\1", command)
        assert_packmatch_command(shlex.split(expanded))


# --- metrics named by the dashboard and the alerts ----------------------------------------------


def exported_metrics() -> set[str]:
    """Every sample name packmatch's registry and Dramatiq's middleware can export."""
    registry = metrics_registry()
    PrometheusMetrics(registry)
    registry.register(
        StateCollector(lambda: RunsInFlight(0, None), lambda: [QueueDepth("q", 0, 0, 0, 0.0)], utcnow)
    )
    names = {family.name for family in registry.collect()}
    names |= set(re.findall(r'"(dramatiq_[a-z_]+)"', inspect.getsource(dramatiq_prometheus)))
    return {family(name) for name in names}


SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def family(sample: str) -> str:
    """A sample name's metric family (`x_total`, `x_bucket` → `x`)."""
    return next((sample[: -len(s)] for s in SUFFIXES if sample.endswith(s)), sample)


def named_metrics(expression: str) -> set[str]:
    return {family(n) for n in re.findall(r"\b((?:packmatch|dramatiq|process)_[a-z0-9_]+)", expression)}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DEPLOY / "grafana" / "dashboards" / "packmatch.json").read_text())
    return loaded


def test_dashboard_panels_query_exported_metrics_through_the_datasource_variable() -> None:
    known = exported_metrics()
    panels = [p for p in dashboard()["panels"] if p["type"] != "row"]
    assert len(panels) >= 15
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            missing = named_metrics(target["expr"]) - known
            assert not missing, (panel["title"], missing)


def test_dashboard_panels_have_unique_ids_and_do_not_overlap() -> None:
    panels = dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, panel["title"]
        cells |= area


def test_alerts_are_complete_and_query_exported_metrics() -> None:
    known = exported_metrics() | {"up"}
    [group] = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    assert len(group["rules"]) >= 8
    for rule in group["rules"]:
        assert rule["labels"]["severity"] in {"page", "warn"}
        assert rule["annotations"]["summary"]
        assert named_metrics(rule["expr"]) <= known, rule["alert"]
