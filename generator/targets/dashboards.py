"""Grafana dashboards: one ConfigMap per tenant, environment and service that is scraped.

The Grafana add-on's sidecar loads every ConfigMap labelled ``grafana_dashboard="1"`` from
all namespaces (``targets/addons.dashboard_selector``: the contract this file consumes), so
each dashboard lives in the tenant's namespace and is synced by the service's Application.
Panels read the same series the SLO rules and the canary analysis read (``model/slo.py``):
request rate, the SLIs' error ratios against their objectives, the recorded burn rates,
and the service's logs from Loki. Files: ``rendered/argocd/<env>/dashboards/<tenant>/<service>.yaml``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from generator.catalog import spec
from generator.formats import emit
from generator.formats.templating import Templates
from generator.model import naming
from generator.model import slo as slo_model
from generator.model.resolve import Deployment, Model
from generator.targets.base import RenderedFile
from generator.targets.common import dashboard_path, rule_labels, scraped
from generator.targets.contracts import Contract, deployed_kinds
from generator.targets.contracts import at as contract_at

NAME = "dashboards"
#: Each environment's files depend on that environment's slice of the model only (see parallel.py).
PER_ENVIRONMENT = True
#: Rough work per deployment relative to the Helm target (only schedules parallel renders).
RELATIVE_COST = 1
T_DASHBOARD = "observability/dashboard.yaml.j2"
#: The label (and value) the Grafana sidecar selects; the Grafana add-on must provide it.
LABEL = "grafana_dashboard"
LABEL_VALUE = "1"
#: The sidecar's folder annotation (``sidecar.dashboards.folderAnnotation``): one folder per tenant.
FOLDER_ANNOTATION = "grafana_folder"
#: Rate window of the traffic panels: fixed (not ``$__rate_interval``) so every expression parses.
RATE_WINDOW = "5m"
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}


def configmap_name(service: str) -> str:
    return f"dashboard-{service}"


def selector() -> str:
    return f"{LABEL}={LABEL_VALUE}"


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    for env in model.environments:
        for d in model.rendered_in(env.name):  # an incremental render (output/units.py) names a few
            for service in d.services:
                if scraped(d, service) is None:
                    continue
                docs = [configmap(d, service)]
                where = contract_at(model, "service", service.name, "name")
                yield RenderedFile(
                    path=dashboard_path(env.name, d.name, service.name),
                    text=templates.render(T_DASHBOARD, d=d, service=service, selector=selector(), documents=docs),
                    sources=(*d.sources, model.source("service", service.name), templates.path(T_DASHBOARD)),
                    tenant=d.name,
                    environment=env.name,
                    consumes=(
                        Contract("namespace", d.namespace, env.name, at=where),
                        Contract("dashboard_sidecar", selector(), env.name, at=where),
                        *deployed_kinds(docs, naming.argocd_project(d.name, env.name), env.name, at=where),
                    ),
                )


def configmap(d: Deployment, service: spec.Service) -> dict[str, Any]:
    """The dashboard's JSON is compact: ``indent`` makes json use its pure-Python encoder, the
    largest single cost of a big render; Grafana reads either, sorted keys keep it stable."""
    board = dashboard(d, service)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": configmap_name(service.name),
            "namespace": d.namespace,
            "labels": {
                LABEL: LABEL_VALUE,
                "app.kubernetes.io/part-of": service.name,
                "app.kubernetes.io/managed-by": emit.GENERATOR,
                **naming.tenant_labels(d),
            },
            "annotations": {FOLDER_ANNOTATION: d.name},
        },
        "data": {f"{d.name}-{service.name}.json": json.dumps(board, separators=(",", ":"), sort_keys=True)},
    }


def expressions(d: Deployment, service: spec.Service) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every Prometheus panel, in panel order."""
    slo = d.settings.services[service.name].slo
    scope = {"namespace": d.namespace, "service": naming.workload_name(service.name)}
    out: list[tuple[str, str]] = []
    total = slo_model.scoped(slo.availability.total, scope)
    out.append(("Requests per second", f"sum(rate({total}[{RATE_WINDOW}]))"))
    if not slo.enabled:
        return out
    labels = rule_labels(d, service)
    selector_text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for sli in slo_model.slis(slo):
        out.append((f"{sli.capitalize()} error ratio ({RATE_WINDOW})", slo_model.error_ratio(slo, sli, scope, RATE_WINDOW)))
        budget = slo_model.number(slo_model.budget(slo_model.objective(slo, sli)))
        for w in slo_model.windows(slo):
            series = f'{slo_model.record_name(sli, w)}{{{selector_text},slo="{sli}"}}'
            out.append((f"{sli.capitalize()} burn rate ({w})", f"{series} / {budget}"))
    if slo.latency.enabled:
        hist = slo_model.scoped(f"{slo.latency.histogram}_bucket", scope)
        out.append(("Latency p99", f"histogram_quantile(0.99, sum by (le) (rate({hist}[{RATE_WINDOW}])))"))
    return out


def log_query(d: Deployment, service: spec.Service) -> str:
    """LogQL over the collector's OTLP resource labels (Loki 3 indexes these by default)."""
    return f'{{k8s_namespace_name="{d.namespace}", k8s_deployment_name="{naming.workload_name(service.name)}"}}'


def dashboard(d: Deployment, service: spec.Service) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    for i, (title, expr) in enumerate(expressions(d, service)):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "datasource": PROMETHEUS,
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "targets": [{"refId": "A", "datasource": PROMETHEUS, "expr": expr}],
            }
        )
    rows = (len(panels) + 1) // 2
    panels.append(
        {
            "id": len(panels) + 1,
            "type": "logs",
            "title": "Logs",
            "datasource": LOKI,
            "gridPos": {"h": 10, "w": 24, "x": 0, "y": 8 * rows},
            "targets": [{"refId": "A", "datasource": LOKI, "expr": log_query(d, service)}],
        }
    )
    return {
        "uid": uid(d, service),
        "title": f"{service.name} / {d.name} ({d.env})",
        "tags": ["companyos", d.env, d.name, service.name, d.tier.name],
        "timezone": "utc",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "panels": panels,
    }


def uid(d: Deployment, service: spec.Service) -> str:
    """Grafana uids stop at 40 characters; a digest keeps them unique and stable."""
    return hashlib.sha256(f"{d.env}/{d.name}/{service.name}".encode()).hexdigest()[:40]
