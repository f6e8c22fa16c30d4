"""SLO alerting: one PrometheusRule per tenant, environment and service that declares an SLO.

Recording rules keep each SLI's error ratio over every window an alert reads; the alerts
are the SRE workbook's multi-window, multi-burn-rate pairs (both windows above ``factor`` x
the error budget), labelled for Alertmanager routing (severity, tenant, service, tier,
environment). Files live at ``rendered/argocd/<env>/observability/<tenant>/<service>.yaml``
and the service's own Application syncs them (``targets/common.slo_rules_path``).

The same file carries the service's ServiceMonitor (every service with an SLO or a declared
``metrics`` endpoint): without a scrape, the rules and the canary analysis see no data. It
selects the chart's Service by ``app.kubernetes.io/name`` (``applicationName``) and the tenant
labels (``additionalLabels``), copies the Argo Rollouts pod-template hash from the pods (the
canary analysis selects on it) and caps samples per scrape from ``services.<name>.metrics``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator.catalog import spec
from generator.formats import emit
from generator.formats.templating import Templates
from generator.model import naming
from generator.model import slo as slo_model
from generator.model.resolve import Deployment, Model
from generator.targets.base import RenderedFile
from generator.targets.common import rule_labels, scraped, slo_rules_path
from generator.targets.contracts import Contract, deployed_kinds
from generator.targets.contracts import at as contract_at

NAME = "observability"
#: Each environment's files depend on that environment's slice of the model only (see parallel.py).
PER_ENVIRONMENT = True
#: Rough work per deployment relative to the Helm target (only schedules parallel renders).
RELATIVE_COST = 1
API = "monitoring.coreos.com/v1"
T_RULE = "observability/prometheus-rule.yaml.j2"
T_MONITOR = "observability/service-monitor.yaml.j2"
#: The label Argo Rollouts puts on the pods of each ReplicaSet; Prometheus turns the ``-`` of a
#: copied pod label into ``_`` (``rollouts_pod_template_hash``, rollouts.HASH_LABEL).
POD_TEMPLATE_HASH = "rollouts-pod-template-hash"
#: The stakater chart's ``application.name``: the label every object of the release carries.
CHART_NAME_LABEL = "app.kubernetes.io/name"


def rule_name(service: str) -> str:
    """One PrometheusRule per service in the tenant's namespace; service names are unique."""
    return f"slo-{service}"


def monitor_name(service: str) -> str:
    """One ServiceMonitor per service in the tenant's namespace, named like its Service."""
    return naming.workload_name(service)


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    for env in model.environments:
        for d in model.rendered_in(env.name):  # an incremental render (output/units.py) names a few
            for service in d.services:
                slo = d.settings.services[service.name].slo
                endpoint = scraped(d, service)
                if not slo.enabled and endpoint is None:
                    continue
                text = ""
                documents: list[dict[str, Any]] = []
                used: list[str] = []
                if slo.enabled:
                    used.append(templates.path(T_RULE))
                    rules = [rule(d, service)]
                    text += templates.render(T_RULE, d=d, service=service, windows=slo_model.windows(slo), documents=rules)
                    documents += rules
                if endpoint is not None:
                    used.append(templates.path(T_MONITOR))
                    monitors = [service_monitor(d, service, endpoint)]
                    settings = d.settings.services[service.name].metrics
                    text += templates.render(T_MONITOR, d=d, service=service, endpoint=endpoint, settings=settings, documents=monitors)
                    documents += monitors
                where = contract_at(model, "service", service.name, "defaults", "slo")
                yield RenderedFile(
                    path=slo_rules_path(env.name, d.name, service.name),
                    text=text,
                    sources=(*d.sources, model.source("service", service.name), *used),
                    tenant=d.name,
                    environment=env.name,
                    # The tenant's namespace, PrometheusRule and ServiceMonitor in its AppProject, their CRDs from an add-on.
                    consumes=(
                        Contract("namespace", d.namespace, env.name, at=where),
                        *deployed_kinds(documents, naming.argocd_project(d.name, env.name), env.name, at=where),
                    ),
                )


def rule(d: Deployment, service: spec.Service) -> dict[str, Any]:
    slo = d.settings.services[service.name].slo
    workload = naming.workload_name(service.name)
    scope = {"namespace": d.namespace, "service": workload}
    labels = rule_labels(d, service)
    groups: list[dict[str, Any]] = []
    for sli in slo_model.slis(slo):
        selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
        records = [
            {"record": slo_model.record_name(sli, w), "expr": slo_model.error_ratio(slo, sli, scope, w), "labels": {**labels, "slo": sli}}
            for w in slo_model.windows(slo)
        ]
        alerts = []
        objective = slo_model.objective(slo, sli)
        for alert in slo.burn_rate_alerts:
            limit = slo_model.number(slo_model.threshold(objective, alert.factor))
            long_series = f'{slo_model.record_name(sli, alert.long_window)}{{{selector},slo="{sli}"}}'
            short_series = f'{slo_model.record_name(sli, alert.short_window)}{{{selector},slo="{sli}"}}'
            alerts.append(
                {
                    "alert": f"SLO{sli.capitalize()}BurnRate",
                    "expr": f"({long_series} > {limit}) and ({short_series} > {limit})",
                    "labels": {
                        **labels,
                        "slo": sli,
                        "severity": alert.severity,
                        "burn_rate": f"{alert.factor:g}",
                        "windows": f"{alert.long_window}-{alert.short_window}",
                    },
                    "annotations": {
                        "summary": f"{service.name} of tenant {d.name} in {d.env} burns its {sli} error budget {alert.factor:g}x too fast",
                        "description": (
                            f"Error ratio above {limit} over both {alert.long_window} and {alert.short_window}"
                            f" (objective {objective:g}% over {slo.window})."
                        ),
                    },
                }
            )
        groups.append({"name": f"slo-{service.name}-{sli}-recording", "rules": records})
        groups.append({"name": f"slo-{service.name}-{sli}-alerts", "rules": alerts})
    return {
        "apiVersion": API,
        "kind": "PrometheusRule",
        "metadata": {
            "name": rule_name(service.name),
            "namespace": d.namespace,
            "labels": {
                "app.kubernetes.io/part-of": service.name,
                "app.kubernetes.io/managed-by": emit.GENERATOR,
                **naming.tenant_labels(d),
            },
        },
        "spec": {"groups": groups},
    }


def service_labels(d: Deployment, service: spec.Service) -> dict[str, str]:
    """The stable labels the stakater chart (9.2.0, ``application.labels``) puts on the Service:
    ``app.kubernetes.io/name`` is ``applicationName`` (the service's name, ``naming.workload_name``)
    and ``additionalLabels`` are the tenant labels (templates/helm/values.yaml.j2). The chart's
    ``app.kubernetes.io/version`` (the image tag) and ``helm.sh/chart`` change with a release, so
    a selector must not use them."""
    return {CHART_NAME_LABEL: naming.workload_name(service.name), **naming.tenant_labels(d)}


def service_monitor(d: Deployment, service: spec.Service, endpoint: spec.MetricsEndpoint) -> dict[str, Any]:
    settings = d.settings.services[service.name].metrics
    scrape: dict[str, Any] = {"port": endpoint.port, "path": endpoint.path, "interval": settings.interval, "scheme": "http"}
    if settings.drop_labels:
        scrape["metricRelabelings"] = [{"action": "labeldrop", "regex": "|".join(sorted(settings.drop_labels))}]
    return {
        "apiVersion": API,
        "kind": "ServiceMonitor",
        "metadata": {
            "name": monitor_name(service.name),
            "namespace": d.namespace,
            "labels": {
                "app.kubernetes.io/part-of": service.name,
                "app.kubernetes.io/managed-by": emit.GENERATOR,
                **naming.tenant_labels(d),
            },
        },
        "spec": {
            "selector": {"matchLabels": service_labels(d, service)},
            "namespaceSelector": {"matchNames": [d.namespace]},
            # Target labels: namespace, service (the Service's name: the SLI scope), pod, plus these.
            "podTargetLabels": [POD_TEMPLATE_HASH],
            "targetLabels": list(naming.tenant_labels(d)),
            "endpoints": [scrape],
            "sampleLimit": settings.sample_limit,
        },
    }
