"""The deploy files say what an operator relies on (``make lint-deploy`` checks their schemas):
a non-root image with a readiness health check, a compose fleet whose every service reports
health, and a chart whose static rendering stays in step with it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "imagegate"


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_the_image_is_multi_stage_non_root_and_checks_readiness() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2 and stages[0].endswith(" AS build")
    final = lines[lines.index(stages[1]) :]
    user = next(line for line in final if line.startswith("USER "))
    assert user.split()[1].split(":")[0] not in ("0", "root")
    healthcheck = " ".join(final[final.index(next(x for x in final if "HEALTHCHECK" in x)) :])
    assert "/readyz" in healthcheck
    # The final stage copies the virtual environment only: no compiler, no pip install.
    assert not any(line.startswith("RUN") and "pip" in line for line in final)
    assert any(line.startswith("COPY --from=build /opt/imagegate") for line in final)


def test_compose_runs_two_gateways_on_shared_services_all_with_health_checks() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services: dict[str, Any] = compose["services"]
    gateways = {name: s for name, s in services.items() if name.startswith("gateway")}
    assert len(gateways) == 2
    for gateway in gateways.values():
        env = gateway["environment"]
        assert env["IMAGEGATE_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert env["IMAGEGATE_REDIS_URL"].startswith("redis://")
        assert env["IMAGEGATE_STORAGE_URL"].startswith("s3://")
        assert "volumes" not in gateway  # no shared disk between replicas
        assert set(gateway["depends_on"]) == {"postgres", "redis", "minio-bucket"}
    for name in ("postgres", "redis", "minio", "prometheus"):
        assert "healthcheck" in services[name], name
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    assert targets == {f"{name}:8000" for name in gateways}


METRICS = {
    "imagegate_requests_total",
    "imagegate_request_duration_seconds_bucket",
    "imagegate_images_total",
    "imagegate_cost_usd_total",
    "imagegate_upstream_requests_total",
    "imagegate_upstream_duration_seconds_bucket",
    "imagegate_tasks",
    "imagegate_task_queue_age_seconds",
    "imagegate_webhooks_pending",
    "imagegate_deployment_cooldown",
}


def test_the_dashboard_and_alerts_use_only_series_the_gateway_exports() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "imagegate.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs += [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    used = {name for expr in exprs for name in re.findall(r"imagegate_\w+", expr)}
    assert used == METRICS


def _env_names(container: dict[str, Any]) -> set[str]:
    return {item["name"] for item in container["env"]}


def test_the_static_manifests_match_the_chart_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    manifests = {doc["kind"]: doc for doc in load_all(DEPLOY / "k8s" / "imagegate.yaml")}
    assert set(manifests) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"{values['image']['repository']}:{chart['appVersion']}"
    secret_keys = {
        item["valueFrom"]["secretKeyRef"]["key"] for item in container["env"] if "valueFrom" in item
    }
    assert secret_keys == set(values["secretKeys"].values())
    template = (CHART / "templates" / "deployment.yaml").read_text()
    templated = set(re.findall(r'"name" "(\w+)"', template)) | set(
        re.findall(r"- name: ([A-Z_]+)\n", template)
    )
    assert _env_names(container) == templated | set(values["env"])
    for probe, path in (("startupProbe", "/readyz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"]["path"] == path
        assert f"path: {path}" in template
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    hpa = manifests["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (
        values["autoscaling"]["minReplicas"],
        values["autoscaling"]["maxReplicas"],
    )
    assert manifests["Service"]["spec"]["ports"][0]["port"] == values["service"]["port"]
    for name in ("deployment.yaml", "service.yaml", "hpa.yaml"):
        assert (CHART / "templates" / name).is_file()
