"""Helm values per tenant, environment and service: ``rendered/helm/<env>/<tenant>/<service>.yaml``.

Values are written for the chart the service names in ``catalog/platform.yaml`` (the sample
uses stakater's ``application`` chart). Secrets never appear here: the values only tell
the chart to create ExternalSecrets that copy named Secrets Manager entries into the pod.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator.catalog.spec import Service
from generator.formats.templating import Templates
from generator.model import naming
from generator.model.resolve import Deployment, Model
from generator.targets import common as hardening
from generator.targets.base import RenderedFile
from generator.targets.common import canary_enabled, values_path

NAME = "helm"
#: Each environment's files depend on that environment's slice of the model only (see parallel.py).
PER_ENVIRONMENT = True
TEMPLATE = "helm/values.yaml.j2"


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    template_source = templates.path(TEMPLATE)
    for d in model.deployments:
        for service in d.services:
            yield RenderedFile(
                path=values_path(d.env, d.name, service.name),
                text=templates.render(TEMPLATE, **context(model, d, service)),
                sources=(*d.sources, model.source("service", service.name), template_source),
                tenant=d.name,
                environment=d.env,
            )


def secret_files(model: Model, d: Deployment, service: Service) -> dict[str, Any]:
    """ExternalSecret entries: key -> Secrets Manager reference (never a value)."""
    files: dict[str, Any] = {}
    if service.secrets:
        files["app-secrets"] = {
            "data": {
                ref.env: {
                    "remoteRef": {"key": naming.secret_key(ref.key, d.name, d.env), **({"property": ref.property} if ref.property else {})}
                }
                for ref in service.secrets
            }
        }
    if service.uses_database:
        files["database"] = {"dataFrom": {"key": naming.db_secret_key(model.platform, d.env, d.name, service.name)}}
    return files


def context(model: Model, d: Deployment, service: Service) -> dict[str, Any]:
    probes = []
    if service.probes:
        probes = [
            (f"{kind}Probe", getattr(service.probes, kind))
            for kind in ("readiness", "liveness", "startup")
            if getattr(service.probes, kind)
        ]
    return {
        "d": d,
        "service": service,
        "platform": model.platform,
        "chart": model.platform.charts[service.chart],
        "settings": d.settings.services[service.name],
        "image_tag": d.image_tag(service.name),
        "labels": naming.tenant_labels(d),
        "probes": probes,
        "secret_files": secret_files(model, d, service),
        "ingress_enabled": d.public_ingress(service),
        # An Argo Rollout owns the pods (workloadRef): the Deployment gets no replica
        # count of its own and the chart's HPA stays off (the Rollout's HPA scales).
        "rollout": canary_enabled(d, service),
        "ingress_group": naming.resource_prefix(model.platform, d.env, d.name),
        "host": naming.hostname(service.name, d.name, d.environment),
        "role_arn": naming.irsa_role_arn(d.account_id, model.platform, d.env, d.name, service.name),
        "pod_security": hardening.pod_security_context(),
        "container_security": hardening.container_security_context(),
    }
