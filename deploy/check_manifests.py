"""Validates rendered Kubernetes manifests: schemas, custom resources and Momentum's rules.

Usage: check_manifests.py OVERLAY=RENDERED.yaml [OVERLAY=RENDERED.yaml ...] [drill=DRILL.yaml]
                           [dashboards=DIRECTORY]
       check_manifests.py --prometheus-rules RENDERED.yaml DIRECTORY
           (the PrometheusRules' groups, and every dashboard query as a recording rule, as one
           Prometheus rule file for promtool)

Every object is validated against the Kubernetes JSON schemas bundled with
kubernetes-validate (offline, strict: unknown fields are errors) at KUBERNETES_VERSION.
Custom resources are validated against the schemas in deploy/schemas/. On top of the
schemas it checks what a schema cannot: the security settings of every container, the
probes, the objects each service needs, the tracing pipeline (the OpenTelemetry Collector,
the exporters the programs name), and what each overlay promises (one replica of everything
in dev; three NATS nodes, three-replica streams and sampled tracing in prod). Exits 1 on any
failure, listing all of them. ``drill=`` names the manifests deploy/restore-drill applies
(``--render``): they are held to the schemas only. ``dashboards=`` names the Grafana
dashboards, held to deploy/schemas/grafana-dashboard.json. Every ``momentum_*`` metric an
alert or a dashboard queries must be one the code defines.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TextIO

import jsonschema  # type: ignore[import-untyped,unused-ignore]
import kubernetes_validate
import yaml

# The Kubernetes version the manifests target; kubernetes-validate bundles its schemas.
KUBERNETES_VERSION = "1.32.0"
DEPLOY_DIR = Path(__file__).resolve().parent
REPO_ROOT = DEPLOY_DIR.parent
# Each custom resource's schema, written from its project's API reference (the CRDs are not
# downloaded); deploy/schemas/README.md says which reference each one follows.
SCHEMAS = {
    (api, kind): DEPLOY_DIR / "schemas" / f"{kind.lower()}-{api.split('.')[0]}-v1.json"
    for api, kind in [
        ("postgresql.cnpg.io/v1", "Cluster"),
        ("postgresql.cnpg.io/v1", "Database"),
        ("postgresql.cnpg.io/v1", "ScheduledBackup"),
        ("postgresql.cnpg.io/v1", "Pooler"),
        ("barmancloud.cnpg.io/v1", "ObjectStore"),
        ("monitoring.coreos.com/v1", "PodMonitor"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
    ]
}
DASHBOARD_SCHEMA = DEPLOY_DIR / "schemas" / "grafana-dashboard.json"
DASHBOARDS = ("auth", "tasks", "analytics", "gateway", "pipeline")
# Where the programs define their metrics, and how a definition reads.
METRIC_SOURCES = ("shared/src", "services", "gateway/src")
METRIC_DEFINITION = re.compile(r"\b(Counter|Gauge|Histogram)\(\s*\"(momentum_[a-z0-9_]+)\"")
METRIC_USE = re.compile(r"\bmomentum_[a-z0-9_]+\b")
# Each workload scraped by a PodMonitor, and the port it must name.
SCRAPED = {
    "auth": "http",
    "tasks": "http",
    "analytics": "http",
    "gateway": "metrics",
    "nats": "metrics",
}
# The CloudNativePG plugin that archives WAL and takes the base backups.
BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"
# Custom resources left unvalidated, each with the reason. None today.
SKIPPED_CUSTOM_RESOURCES: dict[tuple[str, str], str] = {}

SERVICES = {"gateway": 8000, "auth": 8001, "tasks": 8002, "analytics": 8003}
# The gateway's internal port: /metrics and the detailed /readyz, never through the Service.
METRICS_PORT = 9100
DATABASE_SERVICES = ("auth", "tasks", "analytics")
# The services whose outbox relays declare the streams (AUTH_EVENTS, TASK_EVENTS).
STREAM_OWNERS = ("auth", "tasks")
# Settings that a service refuses to start without outside development, each from a Secret.
REQUIRED_SECRETS = {
    "auth": "MOMENTUM_AUTH_KEY_ENCRYPTION_KEY",
    "tasks": "MOMENTUM_TASKS_CURSOR_SECRET",
}

# The collector every program sends its spans to (OTLP: gRPC 4317, HTTP 4318).
COLLECTOR = "otel-collector"
OTLP_PORTS = {"otlp-grpc": 4317, "otlp-http": 4318}
# The exporters OTEL_TRACES_EXPORTER may name: those an image carries (momentum-shared's
# dependencies), not the workspace's development ones (devtools' discard), and `otlp`, which
# momentum_shared.tracing resolves by the OTLP protocol variable.
IMAGE_EXPORTERS = {
    ep.name
    for ep in entry_points(group="opentelemetry_traces_exporter")
    if ep.dist is None or ep.dist.name != "momentum-devtools"
} | {"otlp"}

Manifest = dict[str, Any]


class Report:
    """Collects failures so one run shows all of them."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.failures.append(message)


def say(line: str, *, stream: TextIO = sys.stdout) -> None:
    stream.write(line + "\n")


def load(path: Path) -> list[Manifest]:
    with path.open() as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def ident(obj: Manifest) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def validate_schemas(overlay: str, objects: list[Manifest], report: Report) -> dict[str, int]:
    counts = {"kubernetes": 0, "custom": 0, "skipped": 0}
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"])
        if key in SCHEMAS:
            schema = json.loads(SCHEMAS[key].read_text())
            validator = jsonschema.Draft202012Validator(schema)
            for error in validator.iter_errors(obj):
                path = "/".join(str(p) for p in error.absolute_path)
                report.check(False, f"{overlay}: {ident(obj)}: {path}: {error.message}")
            counts["custom"] += 1
        elif key in SKIPPED_CUSTOM_RESOURCES:
            say(f"  skipped {overlay} {ident(obj)}: {SKIPPED_CUSTOM_RESOURCES[key]}")
            counts["skipped"] += 1
        else:
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.SchemaNotFoundError as exc:
                report.check(False, f"{overlay}: {ident(obj)}: {exc.message}")
            except kubernetes_validate.ValidationError as exc:
                path = "/".join(str(p) for p in exc.absolute_path)
                report.check(False, f"{overlay}: {ident(obj)}: {path}: {exc.message}")
            counts["kubernetes"] += 1
    return counts


def pod_specs(objects: list[Manifest]) -> Iterator[tuple[Manifest, Manifest]]:
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield obj, obj["spec"]["template"]["spec"]
        elif obj["kind"] == "CronJob":
            yield obj, obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def check_pods(overlay: str, objects: list[Manifest], report: Report) -> None:
    for obj, spec in pod_specs(objects):
        where = f"{overlay}: {ident(obj)}"
        report.check(spec.get("automountServiceAccountToken") is False, f"{where}: token mounted")
        pod_security = spec.get("securityContext", {})
        report.check(pod_security.get("runAsNonRoot") is True, f"{where}: pod may run as root")
        report.check(
            pod_security.get("seccompProfile", {}).get("type") == "RuntimeDefault",
            f"{where}: no RuntimeDefault seccomp profile",
        )
        mounts_tmp = False
        containers = spec.get("initContainers", []) + spec["containers"]
        for container in containers:
            at = f"{where}: container {container['name']}"
            security = container.get("securityContext", {})
            report.check(security.get("readOnlyRootFilesystem") is True, f"{at}: writable root")
            report.check(
                security.get("allowPrivilegeEscalation") is False, f"{at}: privilege escalation"
            )
            report.check(security.get("runAsNonRoot") is True, f"{at}: may run as root")
            report.check(
                security.get("capabilities", {}).get("drop") == ["ALL"],
                f"{at}: capabilities not all dropped",
            )
            resources = container.get("resources", {})
            for part in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    report.check(resource in resources.get(part, {}), f"{at}: no {part}.{resource}")
            report.check("@" in container["image"] or ":" in container["image"], f"{at}: untagged")
            report.check(
                not container["image"].startswith("momentum-"), f"{at}: image name not set"
            )
            mounts_tmp |= any(m["mountPath"] == "/tmp" for m in container.get("volumeMounts", []))
        report.check(mounts_tmp, f"{where}: no writable /tmp")
        if obj["kind"] in ("Deployment", "StatefulSet"):
            for container in spec["containers"]:
                at = f"{where}: container {container['name']}"
                report.check("livenessProbe" in container, f"{at}: no liveness probe")
                report.check("readinessProbe" in container, f"{at}: no readiness probe")


def dig(value: Any, *path: str | int) -> Any:
    """value[path[0]][path[1]]..., or None where any step is missing."""
    for step in path:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def by_kind(objects: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def env_names(container: Manifest) -> set[str]:
    return {entry["name"] for entry in container.get("env", [])}


def check_services(overlay: str, objects: list[Manifest], report: Report) -> None:
    deployments = by_kind(objects, "Deployment")
    services = by_kind(objects, "Service")
    accounts = by_kind(objects, "ServiceAccount")
    hpas = by_kind(objects, "HorizontalPodAutoscaler")
    pdbs = by_kind(objects, "PodDisruptionBudget")
    policies = by_kind(objects, "NetworkPolicy")
    config_maps = {
        name.rsplit("-", 1)[0]: obj for name, obj in by_kind(objects, "ConfigMap").items()
    }
    report.check(not by_kind(objects, "Secret"), f"{overlay}: a Secret's values are committed")
    default_deny = policies.get("default-deny", {}).get("spec", {})
    report.check(
        default_deny.get("podSelector") == {}
        and sorted(default_deny.get("policyTypes", [])) == ["Egress", "Ingress"]
        and "ingress" not in default_deny
        and "egress" not in default_deny,
        f"{overlay}: no default-deny NetworkPolicy",
    )
    report.check(
        [rule["backend"]["service"]["name"] for rule in _ingress_backends(objects)] == ["gateway"],
        f"{overlay}: the Ingress must route to the gateway alone",
    )
    gateway = deployments.get("gateway")
    if gateway is not None:
        template = gateway["spec"]["template"]
        ports = {
            p.get("name"): p["containerPort"] for p in template["spec"]["containers"][0]["ports"]
        }
        annotations = template["metadata"].get("annotations", {})
        report.check(
            ports.get("metrics") == METRICS_PORT
            and annotations.get("prometheus.io/port") == str(METRICS_PORT)
            and config_value(objects, "gateway-config", "MOMENTUM_GATEWAY_METRICS_PORT")
            == str(METRICS_PORT),
            f"{overlay}: gateway: metrics not on their own port {METRICS_PORT}",
        )
        exposed = {p.get("targetPort") for p in dig(services, "gateway", "spec", "ports") or []}
        report.check(exposed == {"http"}, f"{overlay}: gateway: the Service exposes more than http")
    for name in ("gateway", "auth"):
        # uvicorn takes the left-most (client-written) X-Forwarded-For entry under "*".
        trusted = config_value(objects, f"{name}-config", "FORWARDED_ALLOW_IPS")
        report.check(
            trusted is not None and trusted.strip() not in ("", "*"),
            f"{overlay}: {name} must name the proxies it trusts in FORWARDED_ALLOW_IPS, not *",
        )
    for name, port in SERVICES.items():
        where = f"{overlay}: {name}"
        deployment = deployments.get(name)
        report.check(deployment is not None, f"{where}: no Deployment")
        if deployment is None:
            continue
        pod = deployment["spec"]["template"]["spec"]
        server = pod["containers"][0]
        report.check(
            dig(server, "livenessProbe", "httpGet", "path") == "/healthz",
            f"{where}: liveness probe not on /healthz",
        )
        report.check(
            dig(server, "readinessProbe", "httpGet", "path") == "/readyz",
            f"{where}: readiness probe not on /readyz",
        )
        report.check(dig(server, "ports", 0, "containerPort") == port, f"{where}: not on {port}")
        report.check(
            services.get(name, {}).get("spec", {}).get("ports", [{}])[0].get("port") == port,
            f"{where}: no Service on {port}",
        )
        account = accounts.get(pod.get("serviceAccountName", ""))
        report.check(
            account is not None and account.get("automountServiceAccountToken") is False,
            f"{where}: no own ServiceAccount without a token",
        )
        report.check(name in hpas, f"{where}: no HorizontalPodAutoscaler")
        report.check(name in pdbs, f"{where}: no PodDisruptionBudget")
        report.check(f"{name}-config" in config_maps, f"{where}: no ConfigMap")
        if name in DATABASE_SERVICES:
            init = pod.get("initContainers", [])
            report.check(
                bool(init) and init[0]["command"][:2] == ["alembic", "-c"],
                f"{where}: migrations do not run before the server starts",
            )
            report.check(
                f"MOMENTUM_{name.upper()}_DATABASE_URL" in env_names(server),
                f"{where}: no database URL",
            )
        secret_names = {
            entry["valueFrom"]["secretKeyRef"]["name"]
            for entry in server.get("env", [])
            if entry["name"] == f"MOMENTUM_{name.upper()}_NATS_PASSWORD"
            and "secretKeyRef" in entry.get("valueFrom", {})
        }
        report.check(
            secret_names == {"momentum-nats-users"}, f"{where}: NATS password not from a Secret"
        )
        nats_url = config_value(objects, f"{name}-config", f"MOMENTUM_{name.upper()}_NATS_URL")
        report.check(
            (nats_url or "").startswith("tls://"), f"{where}: NATS is not reached over TLS"
        )
        if name in REQUIRED_SECRETS:
            secret_env = {
                entry["name"]
                for entry in server.get("env", [])
                if "secretKeyRef" in entry.get("valueFrom", {})
            }
            report.check(
                REQUIRED_SECRETS[name] in secret_env,
                f"{where}: {REQUIRED_SECRETS[name]} not from a Secret",
            )


def _ingress_backends(objects: list[Manifest]) -> Iterator[Manifest]:
    for ingress in by_kind(objects, "Ingress").values():
        for rule in ingress["spec"].get("rules", []):
            yield from rule["http"]["paths"]


def config_value(objects: list[Manifest], prefix: str, key: str) -> str | None:
    for obj in objects:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith(prefix):
            value = obj.get("data", {}).get(key)
            return value if value is None else str(value)
    return None


def _selected_names(selector: Manifest) -> set[str]:
    """The app.kubernetes.io/name values a pod selector matches (labels or an In expression)."""
    names = set()
    if "app.kubernetes.io/name" in selector.get("matchLabels", {}):
        names.add(selector["matchLabels"]["app.kubernetes.io/name"])
    for expression in selector.get("matchExpressions", []):
        if expression["key"] == "app.kubernetes.io/name" and expression["operator"] == "In":
            names.update(expression["values"])
    return names


def _ports(rule: Manifest) -> set[int]:
    return {port["port"] for port in rule.get("ports", [])}


def check_tracing(overlay: str, objects: list[Manifest], report: Report) -> None:
    """The collector, its way in from every program and out to a backend; the programs' OTEL_*."""
    where = f"{overlay}: {COLLECTOR}"
    report.check(COLLECTOR in by_kind(objects, "Deployment"), f"{where}: no Deployment")
    service_ports = {
        port.get("name"): port["port"]
        for port in dig(by_kind(objects, "Service"), COLLECTOR, "spec", "ports") or []
    }
    report.check(
        service_ports == OTLP_PORTS, f"{where}: the Service must expose exactly {OTLP_PORTS}"
    )
    config_text = config_value(objects, f"{COLLECTOR}-config", "config.yaml")
    config = yaml.safe_load(config_text) if config_text else {}
    pipeline = dig(config, "service", "pipelines", "traces") or {}
    report.check(
        "otlp" in pipeline.get("receivers", []) and "otlphttp" in pipeline.get("exporters", []),
        f"{where}: the traces pipeline must receive otlp and export otlphttp",
    )
    protocols = dig(config, "receivers", "otlp", "protocols") or {}
    report.check(
        {"grpc", "http"} <= set(protocols), f"{where}: OTLP must be received over gRPC and HTTP"
    )
    report.check(
        dig(config, "exporters", "otlphttp", "endpoint")
        == "${env:MOMENTUM_TRACES_BACKEND_ENDPOINT}",
        f"{where}: the backend must come from MOMENTUM_TRACES_BACKEND_ENDPOINT",
    )
    backend = config_value(objects, f"{COLLECTOR}-env", "MOMENTUM_TRACES_BACKEND_ENDPOINT")
    report.check(
        (backend or "").startswith(("http://", "https://")), f"{where}: no backend endpoint"
    )
    policies = by_kind(objects, "NetworkPolicy")
    own = dig(policies, COLLECTOR, "spec") or {}
    admitted = {
        name
        for rule in own.get("ingress", [])
        if _ports(rule) >= set(OTLP_PORTS.values())
        for peer in rule.get("from", [])
        for name in _selected_names(peer.get("podSelector", {}))
    }
    report.check(
        admitted >= set(SERVICES), f"{where}: its NetworkPolicy does not admit every program"
    )
    report.check(bool(own.get("egress")), f"{where}: its NetworkPolicy reaches no backend")
    exporting = dig(policies, "otel-export", "spec") or {}
    reaches = any(
        COLLECTOR in _selected_names(peer.get("podSelector", {}))
        for rule in exporting.get("egress", [])
        for peer in rule.get("to", [])
    )
    report.check(
        reaches and _selected_names(exporting.get("podSelector", {})) >= set(SERVICES),
        f"{overlay}: not every program may reach the collector (NetworkPolicy otel-export)",
    )
    for name in SERVICES:
        at = f"{overlay}: {name}"

        def value(key: str, name: str = name) -> str | None:
            return config_value(objects, f"{name}-config", key)

        exporters = [e.strip() for e in (value("OTEL_TRACES_EXPORTER") or "").split(",")]
        exporters = [e for e in exporters if e and e != "none"]
        for exporter in exporters:
            report.check(
                exporter in IMAGE_EXPORTERS,
                f"{at}: OTEL_TRACES_EXPORTER names {exporter!r}, which the image does not have"
                f" (it has {', '.join(sorted(IMAGE_EXPORTERS))})",
            )
        if not exporters:
            report.check(overlay != "prod", f"{at}: tracing is off in prod")
            continue
        endpoint = value("OTEL_EXPORTER_OTLP_ENDPOINT") or ""
        report.check(
            endpoint.startswith(f"http://{COLLECTOR}:"),
            f"{at}: spans are not sent to the collector ({endpoint or 'no endpoint'})",
        )
        report.check(
            value("OTEL_SERVICE_NAME") == f"momentum-{name}",
            f"{at}: OTEL_SERVICE_NAME is not momentum-{name}",
        )
        if overlay == "prod":
            report.check(
                value("OTEL_TRACES_SAMPLER") == "parentbased_traceidratio",
                f"{at}: prod samples with {value('OTEL_TRACES_SAMPLER')}, not a ratio",
            )
            try:
                ratio = float(value("OTEL_TRACES_SAMPLER_ARG") or "")
            except ValueError:
                ratio = -1.0
            report.check(0 < ratio <= 1, f"{at}: no sampling ratio in (0, 1]")


def check_dev(objects: list[Manifest], report: Report) -> None:
    for name, deployment in by_kind(objects, "Deployment").items():
        report.check(deployment["spec"].get("replicas") == 1, f"dev: {name} is not 1 replica")
    for name, hpa in by_kind(objects, "HorizontalPodAutoscaler").items():
        report.check(hpa["spec"]["maxReplicas"] == 1, f"dev: {name} may scale past 1")
    statefulsets = by_kind(objects, "StatefulSet")
    report.check(statefulsets["nats"]["spec"]["replicas"] == 1, "dev: NATS is not a single node")
    report.check(statefulsets["postgres"]["spec"]["replicas"] == 1, "dev: PostgreSQL not single")
    report.check(not by_kind(objects, "Cluster"), "dev: a CloudNativePG Cluster in dev")


def check_prod(objects: list[Manifest], report: Report) -> None:
    for name, deployment in by_kind(objects, "Deployment").items():
        report.check(
            "replicas" not in deployment["spec"], f"prod: {name} sets replicas; its HPA owns them"
        )
    for name, hpa in by_kind(objects, "HorizontalPodAutoscaler").items():
        report.check(hpa["spec"]["minReplicas"] >= 2, f"prod: {name} may scale below 2")
    nats = by_kind(objects, "StatefulSet")["nats"]["spec"]
    report.check(nats["replicas"] == 3, "prod: NATS is not 3 nodes")
    report.check(bool(nats.get("volumeClaimTemplates")), "prod: NATS has no persistent volumes")
    for service in STREAM_OWNERS:
        replicas = config_value(
            objects, f"{service}-config", f"MOMENTUM_{service.upper()}_NATS_STREAM_REPLICAS"
        )
        report.check(replicas == "3", f"prod: {service} streams are not 3 replicas")
    clusters = by_kind(objects, "Cluster")
    report.check(list(clusters) == ["momentum-db"], "prod: no CloudNativePG Cluster momentum-db")
    roles = {
        role["name"]
        for cluster in clusters.values()
        for role in cluster["spec"].get("managed", {}).get("roles", [])
    }
    databases = {
        (db["spec"]["name"], db["spec"]["owner"]) for db in by_kind(objects, "Database").values()
    }
    for service in DATABASE_SERVICES:
        role = f"momentum_{service}"
        report.check(role in roles, f"prod: no role {role}")
        report.check((role, role) in databases, f"prod: no database {role} owned by {role}")
    report.check(
        not by_kind(objects, "StatefulSet").get("postgres"), "prod: a stand-alone PostgreSQL"
    )
    check_backups(objects, report)
    check_connection_budget(objects, report)
    check_monitoring(objects, report)


# PostgreSQL connections kept outside the pooler's: superuser_reserved_connections (3), the
# standbys' replication and the operator (≈6), backups and the exporter (≈4), migrations and
# jobs connecting directly (≈7), with room to spare for people and a second rollout.
DIRECT_CONNECTIONS = 60


def check_connection_budget(objects: list[Manifest], report: Report) -> None:
    """The services reach PostgreSQL through a transaction-mode Pooler, without asyncpg's
    statement cache; their pools at the HPA's maximum plus a rollout's surge fit the
    pooler's server pools, and those fit max_connections (docs/deploy.md)."""
    poolers = [
        pooler
        for pooler in by_kind(objects, "Pooler").values()
        if dig(pooler, "spec", "cluster", "name") == "momentum-db"
        and dig(pooler, "spec", "type") == "rw"
        and dig(pooler, "spec", "pgbouncer", "poolMode") == "transaction"
    ]
    report.check(len(poolers) == 1, "prod: no transaction-mode Pooler in front of momentum-db")
    if len(poolers) != 1:
        return
    pooler = poolers[0]
    parameters = dig(pooler, "spec", "pgbouncer", "parameters") or {}
    server_pool = int(pooler["spec"].get("instances", 1)) * int(
        parameters.get("default_pool_size", "20")
    )
    deployments = by_kind(objects, "Deployment")
    hpas = by_kind(objects, "HorizontalPodAutoscaler")
    for service in DATABASE_SERVICES:
        prefix = f"MOMENTUM_{service.upper()}_"
        host = config_value(objects, f"{service}-config", "MOMENTUM_DB_HOST")
        report.check(
            host == pooler["metadata"]["name"],
            f"prod: {service} does not connect through the pooler",
        )
        report.check(
            config_value(objects, f"{service}-config", f"{prefix}DATABASE_STATEMENT_CACHE")
            == "false",
            f"prod: {service} keeps asyncpg's statement cache behind a transaction pooler",
        )
        report.check(
            config_value(objects, f"{service}-config", "MOMENTUM_DB_DIRECT_HOST")
            == "momentum-db-rw",
            f"prod: {service}'s migrations do not reach the primary directly",
        )
        deployment = deployments.get(service)
        hpa = hpas.get(service)
        if deployment is None or hpa is None:
            continue
        surge = dig(deployment, "spec", "strategy", "rollingUpdate", "maxSurge") or 0
        pods = int(hpa["spec"]["maxReplicas"]) + int(surge)
        pool = int(
            config_value(objects, f"{service}-config", f"{prefix}DATABASE_POOL_SIZE") or "10"
        )
        clients = pods * 2 * pool  # create_engine keeps up to twice the pool size
        report.check(
            clients <= server_pool,
            f"prod: {service} may open {clients} connections ({pods} pods x {2 * pool}),"
            f" more than the pooler's {server_pool} for its database",
        )
    cluster = by_kind(objects, "Cluster").get("momentum-db", {})
    max_connections = int(
        dig(cluster, "spec", "postgresql", "parameters", "max_connections") or "100"
    )
    needed = server_pool * len(DATABASE_SERVICES) + DIRECT_CONNECTIONS
    report.check(
        needed <= max_connections,
        f"prod: the pooler ({server_pool} x {len(DATABASE_SERVICES)} databases) and"
        f" {DIRECT_CONNECTIONS} direct connections exceed max_connections {max_connections}",
    )


def exported_metrics() -> set[str]:
    """Every series name the programs export (a histogram's _bucket, _sum and _count)."""
    names: set[str] = set()
    for source in METRIC_SOURCES:
        for path in (REPO_ROOT / source).rglob("*.py"):
            if "/tests/" in str(path):
                continue
            for kind, name in METRIC_DEFINITION.findall(path.read_text()):
                names.add(name)
                if kind == "Histogram":
                    names.update(f"{name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    return names


def check_metric_names(where: str, expressions: list[str], report: Report) -> None:
    known = exported_metrics()
    for expression in expressions:
        for name in sorted(set(METRIC_USE.findall(expression)) - known):
            report.check(False, f"{where}: {name} is not a metric the code exports")


def rule_expressions(objects: list[Manifest]) -> list[str]:
    return [
        str(rule["expr"])
        for obj in objects
        if obj["kind"] == "PrometheusRule"
        for group in obj["spec"]["groups"]
        for rule in group["rules"]
    ]


def check_monitoring(objects: list[Manifest], report: Report) -> None:
    """Every workload scraped on the port that serves its metrics, and let through by its
    NetworkPolicy from the monitoring namespace; alerts on metrics that exist."""
    monitors = by_kind(objects, "PodMonitor")
    pods = {
        obj["metadata"]["name"]: obj["spec"]["template"]
        for obj in objects
        if obj["kind"] in ("Deployment", "StatefulSet")
    }
    for workload, port_name in SCRAPED.items():
        template = pods.get(workload)
        if template is None:
            continue
        labels = template["metadata"].get("labels", {})
        ports = {
            port.get("name"): port["containerPort"]
            for container in template["spec"]["containers"]
            for port in container.get("ports", [])
        }
        scraped = [
            monitor
            for monitor in monitors.values()
            if _selects(dig(monitor, "spec", "selector") or {}, labels)
            and port_name in {e.get("port") for e in monitor["spec"]["podMetricsEndpoints"]}
        ]
        report.check(
            bool(scraped) and port_name in ports,
            f"prod: {workload} is not scraped on its {port_name} port",
        )
        admitted = any(
            _selects(dig(policy, "spec", "podSelector") or {}, labels)
            and any(
                _from_monitoring(rule) and ports.get(port_name) in _rule_ports(rule)
                for rule in dig(policy, "spec", "ingress") or []
            )
            for policy in by_kind(objects, "NetworkPolicy").values()
        )
        report.check(admitted, f"prod: no NetworkPolicy lets Prometheus scrape {workload}")
    report.check(bool(by_kind(objects, "PrometheusRule")), "prod: no PrometheusRule")
    check_metric_names("prod: PrometheusRule", rule_expressions(objects), report)


def _selects(selector: Manifest, labels: dict[str, str]) -> bool:
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        present = expression["key"] in labels
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression.get("values", []):
            return False
        if operator == "NotIn" and value in expression.get("values", []):
            return False
        if (operator == "Exists") != present and operator in ("Exists", "DoesNotExist"):
            return False
    return True


def _from_monitoring(rule: Manifest) -> bool:
    return any(
        dig(peer, "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name") == "monitoring"
        for peer in rule.get("from", [])
    )


def _rule_ports(rule: Manifest) -> set[int]:
    return {port.get("port") for port in rule.get("ports", [])}


def dashboard_expressions(dashboard: Manifest) -> list[str]:
    return [
        str(target["expr"])
        for panel in dashboard.get("panels", [])
        for target in panel.get("targets", [])
    ]


def check_dashboards(directory: Path, report: Report) -> int:
    """Each dashboard valid against the schema, one per service and the pipeline, unique
    uids and panel ids, and only metrics that exist."""
    validator = jsonschema.Draft202012Validator(json.loads(DASHBOARD_SCHEMA.read_text()))
    paths = sorted(directory.glob("*.json"))
    report.check(
        sorted(path.stem for path in paths) == sorted(DASHBOARDS),
        f"dashboards: expected {', '.join(DASHBOARDS)}, found {[p.stem for p in paths]}",
    )
    uids = []
    for path in paths:
        where = f"dashboards/{path.name}"
        try:
            dashboard = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            report.check(False, f"{where}: not JSON: {exc}")
            continue
        for error in validator.iter_errors(dashboard):
            at = "/".join(str(p) for p in error.absolute_path)
            report.check(False, f"{where}: {at}: {error.message}")
        uids.append(dashboard.get("uid"))
        ids = [panel.get("id") for panel in dashboard.get("panels", [])]
        report.check(len(ids) == len(set(ids)), f"{where}: panel ids repeat")
        check_metric_names(where, dashboard_expressions(dashboard), report)
    report.check(len(uids) == len(set(uids)), "dashboards: uids repeat")
    return len(paths)


def check_backups(objects: list[Manifest], report: Report) -> None:
    """WAL archived to an ObjectStore whose credentials come from a Secret, and a schedule
    of base backups of the same Cluster through the same plugin."""
    cluster = by_kind(objects, "Cluster").get("momentum-db", {})
    archivers = [
        plugin
        for plugin in dig(cluster, "spec", "plugins") or []
        if plugin.get("name") == BARMAN_PLUGIN and plugin.get("isWALArchiver") is True
    ]
    report.check(len(archivers) == 1, "prod: momentum-db archives no WAL (Barman Cloud plugin)")
    stores = by_kind(objects, "ObjectStore")
    store_name = dig(archivers, 0, "parameters", "barmanObjectName")
    store = stores.get(store_name or "")
    report.check(
        store is not None, f"prod: momentum-db archives to a missing ObjectStore {store_name}"
    )
    credentials = dig(store, "spec", "configuration", "s3Credentials") or {}
    report.check(
        all(dig(credentials, part, "name") for part in ("accessKeyId", "secretAccessKey")),
        "prod: the ObjectStore's credentials are not from a Secret",
    )
    report.check(
        bool(dig(store, "spec", "retentionPolicy")), "prod: backups are never pruned (retention)"
    )
    schedules = [
        backup
        for backup in by_kind(objects, "ScheduledBackup").values()
        if dig(backup, "spec", "cluster", "name") == "momentum-db"
        and dig(backup, "spec", "method") == "plugin"
        and dig(backup, "spec", "pluginConfiguration", "name") == BARMAN_PLUGIN
    ]
    report.check(bool(schedules), "prod: no ScheduledBackup of momentum-db through the plugin")


def _throwaway_certificate(directory: Path) -> None:
    """tls.crt and tls.key (self-signed, for ``nats``) so nats-server -t can load its TLS block."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nats")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("nats")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (directory / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def check_nats_config(overlay: str, objects: list[Manifest], report: Report) -> None:
    """Runs nats-server's own config test (-t) on the rendered nats.conf."""
    server = REPO_ROOT / ".venv" / "bin" / "nats-server"
    conf = config_value(objects, "nats-config", "nats.conf")
    report.check(conf is not None, f"{overlay}: no nats.conf")
    if conf is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        # The Secrets' parts, stood in for: a throwaway certificate and a password per user.
        tls_dir = Path(tmp)
        _throwaway_certificate(tls_dir)
        path = Path(tmp) / "nats.conf"
        path.write_text(conf.replace("/etc/nats-tls/", f"{tls_dir}/"))
        passwords = set(re.findall(r"\$(MOMENTUM_NATS_[A-Z]+_PASSWORD)", conf))
        env = {**os.environ, "POD_NAME": "nats-0", **dict.fromkeys(passwords, "x-check")}
        result = subprocess.run(
            [str(server), "-c", str(path), "-t"], capture_output=True, text=True, env=env
        )
    report.check(
        result.returncode == 0, f"{overlay}: nats.conf: {result.stderr.strip()}{result.stdout}"
    )
    report.check("tls {" in conf, f"{overlay}: nats.conf does not require TLS of clients")
    report.check(
        "authorization" not in conf and "no_auth_user" not in conf and "accounts: {" in conf,
        f"{overlay}: nats.conf has no per-program users",
    )
    routes = conf.count("nats://nats-")
    expected = 3 if overlay == "prod" else 0
    report.check(routes == expected, f"{overlay}: nats.conf has {routes} routes, not {expected}")


OVERLAY_CHECKS: dict[str, Callable[[list[Manifest], Report], None]] = {
    "dev": check_dev,
    "prod": check_prod,
}


def check_overlay(overlay: str, objects: list[Manifest], report: Report) -> dict[str, int]:
    counts = validate_schemas(overlay, objects, report)
    check_pods(overlay, objects, report)
    check_services(overlay, objects, report)
    check_tracing(overlay, objects, report)
    check_nats_config(overlay, objects, report)
    OVERLAY_CHECKS[overlay](objects, report)
    return counts


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def server(objects: list[Manifest], name: str) -> Manifest:
    container: Manifest = find(objects, "Deployment", name)["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


# Breakages the checks above must catch, each applied alone to a copy of the prod overlay:
# a check that cannot fail is no check.
MUTATIONS: dict[str, Callable[[list[Manifest]], object]] = {
    "unknown field": lambda o: find(o, "PodDisruptionBudget", "auth")["spec"].update(
        maxUnavalable=1
    ),
    "wrong type": lambda o: find(o, "StatefulSet", "nats")["spec"].update(replicas="3"),
    "bad CloudNativePG enum": lambda o: find(o, "Cluster", "momentum-db")["spec"][
        "affinity"
    ].update(podAntiAffinityType="always"),
    "unknown CloudNativePG field": lambda o: find(o, "Database", "momentum-tasks")["spec"].update(
        ownr="x"
    ),
    "writable root": lambda o: server(o, "tasks")["securityContext"].update(
        readOnlyRootFilesystem=False
    ),
    "capabilities kept": lambda o: server(o, "gateway")["securityContext"].update(
        capabilities={"drop": ["NET_RAW"]}
    ),
    "no readiness probe": lambda o: server(o, "analytics").pop("readinessProbe"),
    "no memory limit": lambda o: server(o, "auth")["resources"]["limits"].pop("memory"),
    "committed Secret": lambda o: o.append(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "data": {}}
    ),
    "no default deny": lambda o: o.remove(find(o, "NetworkPolicy", "default-deny")),
    "no migrations": lambda o: find(o, "Deployment", "tasks")["spec"]["template"]["spec"].pop(
        "initContainers"
    ),
    "no PDB": lambda o: o.remove(find(o, "PodDisruptionBudget", "analytics")),
    "single-replica streams": lambda o: find_config(o, "auth-config")["data"].update(
        MOMENTUM_AUTH_NATS_STREAM_REPLICAS="1"
    ),
    "every proxy trusted": lambda o: find_config(o, "gateway-config")["data"].update(
        FORWARDED_ALLOW_IPS="*"
    ),
    "gateway metrics on the public port": lambda o: find_config(o, "gateway-config")["data"].update(
        MOMENTUM_GATEWAY_METRICS_PORT="8000"
    ),
    "broken nats.conf": lambda o: find_config(o, "nats-config")["data"].update(
        {"nats.conf": "jetstream {"}
    ),
    "an exporter the image lacks": lambda o: find_config(o, "tasks-config")["data"].update(
        OTEL_TRACES_EXPORTER="otlp_proto_grcp"
    ),
    "every trace kept in prod": lambda o: find_config(o, "auth-config")["data"].update(
        OTEL_TRACES_SAMPLER="always_on"
    ),
    "spans sent past the collector": lambda o: find_config(o, "gateway-config")["data"].update(
        OTEL_EXPORTER_OTLP_ENDPOINT="http://tempo.observability:4317"
    ),
    "no OTLP/HTTP port on the collector": lambda o: find(o, "Service", COLLECTOR)["spec"][
        "ports"
    ].pop(),
    "a program cut off from the collector": lambda o: find(o, "NetworkPolicy", "otel-export")[
        "spec"
    ]["podSelector"]["matchExpressions"][0]["values"].remove("analytics"),
    "no WAL archiving": lambda o: find(o, "Cluster", "momentum-db")["spec"].pop("plugins"),
    "no scheduled backup": lambda o: o.remove(find(o, "ScheduledBackup", "momentum-db-nightly")),
    "services past the pooler": lambda o: find_config(o, "tasks-config")["data"].update(
        MOMENTUM_DB_HOST="momentum-db-rw"
    ),
    "statement cache behind the pooler": lambda o: find_config(o, "auth-config")["data"].update(
        MOMENTUM_AUTH_DATABASE_STATEMENT_CACHE="true"
    ),
    "connections past the pooler's": lambda o: find(o, "HorizontalPodAutoscaler", "analytics")[
        "spec"
    ].update(maxReplicas=12),
    "session-mode pooler": lambda o: find(o, "Pooler", "momentum-db-pooler-rw")["spec"][
        "pgbouncer"
    ].update(poolMode="session"),
    "auth not scraped": lambda o: find(o, "PodMonitor", "momentum-services")["spec"]["selector"][
        "matchExpressions"
    ][0].update(values=["tasks", "analytics"]),
    "scrape blocked": lambda o: find(o, "NetworkPolicy", "nats")["spec"]["ingress"].pop(),
    "alert on a metric that does not exist": lambda o: find(o, "PrometheusRule", "momentum")[
        "spec"
    ]["groups"][0]["rules"][0].update(expr="momentum_outbox_oldest_age_seconds > 60"),
    "bad ScheduledBackup schedule": lambda o: find(o, "ScheduledBackup", "momentum-db-nightly")[
        "spec"
    ].update(schedule="0 2 * * *"),
}


def find_config(objects: list[Manifest], prefix: str) -> Manifest:
    return next(
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith(prefix)
    )


def self_test(objects: list[Manifest]) -> list[str]:
    """Applies each mutation to a fresh copy of the prod objects; returns those not caught."""
    missed = []
    for name, mutate in MUTATIONS.items():
        copy = json.loads(json.dumps(objects))
        mutate(copy)
        report = Report()
        check_overlay("prod", copy, report)
        if not report.failures:
            missed.append(name)
    return missed


def write_prometheus_rules(objects: list[Manifest], dashboards: Path) -> int:
    """Every PrometheusRule's groups, and each dashboard's queries as recording rules (so
    promtool parses them too), as one Prometheus rule file on stdout."""
    groups = [
        group
        for obj in objects
        if obj["kind"] == "PrometheusRule"
        for group in obj["spec"]["groups"]
    ]
    found = bool(groups)
    for path in sorted(dashboards.glob("*.json")):
        expressions = dashboard_expressions(json.loads(path.read_text()))
        groups.append(
            {
                "name": f"dashboard-{path.stem}",
                "rules": [
                    {"record": f"dashboard:{path.stem}:query{number}", "expr": expression}
                    for number, expression in enumerate(expressions)
                ],
            }
        )
    sys.stdout.write(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return 0 if found else 1


def main(argv: list[str]) -> int:
    report = Report()
    rendered_prod: list[Manifest] = []
    if argv[:1] == ["--prometheus-rules"]:
        return write_prometheus_rules(load(Path(argv[1])), Path(argv[2]))
    for arg in argv:
        overlay, _, rendered = arg.partition("=")
        if overlay == "dashboards":
            count = check_dashboards(Path(rendered), report)
            say(f"  dashboards: {count} against {DASHBOARD_SCHEMA.name}")
            continue
        objects = load(Path(rendered))
        if overlay == "drill":
            validate_schemas(overlay, objects, report)
            say(f"  drill: {len(objects)} objects of deploy/restore-drill against deploy/schemas")
            continue
        counts = check_overlay(overlay, objects, report)
        if overlay == "prod":
            rendered_prod = objects
        say(
            f"  {overlay}: {len(objects)} objects; {counts['kubernetes']} against Kubernetes "
            f"{KUBERNETES_VERSION} schemas (strict), {counts['custom']} against "
            f"deploy/schemas, {counts['skipped']} skipped"
        )
    if rendered_prod and not report.failures:
        missed = self_test(rendered_prod)
        for name in missed:
            report.check(False, f"self-test: a manifest with {name} passed the checks")
        say(f"  self-test: {len(MUTATIONS) - len(missed)} of {len(MUTATIONS)} breakages caught")
    for failure in report.failures:
        say(f"  FAIL {failure}", stream=sys.stderr)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
