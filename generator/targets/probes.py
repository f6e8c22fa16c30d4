"""Synthetic checks: one Prometheus Operator ``Probe`` per public service host and environment.

The blackbox exporter add-on (chart ``prometheus-blackbox-exporter``) requests the service's
public URL the way a user does (through CloudFront, WAF and the ALB) with the ``http_2xx``
module; ``probe_success`` is labelled with the tenant, service and environment, so it feeds
the availability SLO from outside the cluster too. The Probe names the prober's address,
which the add-on provides (``prober_endpoint``): no exporter in the environment, no render.
Files: ``rendered/argocd/<env>/probes/<tenant>/<service>.yaml``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator.catalog import spec
from generator.formats import emit
from generator.formats.templating import Templates
from generator.model import addons as model_addons
from generator.model import naming
from generator.model.resolve import Deployment, Model
from generator.targets.base import RenderedFile
from generator.targets.common import probe_path
from generator.targets.contracts import Contract, deployed_kinds
from generator.targets.contracts import at as contract_at

NAME = "probes"
#: Each environment's files depend on that environment's slice of the model only (see parallel.py).
PER_ENVIRONMENT = True
#: Rough work per deployment relative to the Helm target (only schedules parallel renders).
RELATIVE_COST = 1
API = "monitoring.coreos.com/v1"
T_PROBE = "observability/probe.yaml.j2"
PROBER_CHART = "prometheus-blackbox-exporter"
PROBER_PORT = 9115
MODULE = "http_2xx"
INTERVAL = "30s"
TIMEOUT = "10s"
JOB = "synthetic"


def probe_name(service: str) -> str:
    return f"synthetic-{service}"


def prober_address(model: Model, env: str) -> str | None:
    """``<service>.<namespace>.svc:9115`` of the environment's blackbox exporter add-on, as
    its chart names the Service (``fullnameOverride``, else the release name)."""
    for addon in model_addons.in_environment(model.catalog, env):
        if addon.chart.name == PROBER_CHART:
            fullname = str(addon.values.get("fullnameOverride") or addon.name)
            return f"{fullname}.{addon.namespace}.svc:{PROBER_PORT}"
    return None


def url(d: Deployment, service: spec.Service) -> str:
    return f"https://{naming.hostname(service.name, d.name, d.environment)}{service.ingress.path}"


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    for env in model.environments:
        prober = prober_address(model, env.name)
        for d in model.rendered_in(env.name):  # an incremental render (output/units.py) names a few
            for service in d.services:
                if not d.public_ingress(service):
                    continue
                where = contract_at(model, "service", service.name, "ingress")
                docs = [probe(d, service, prober or f"<no {PROBER_CHART} add-on>")]
                yield RenderedFile(
                    path=probe_path(env.name, d.name, service.name),
                    text=templates.render(
                        T_PROBE, d=d, service=service, url=url(d, service), prober=prober, module=MODULE, interval=INTERVAL, documents=docs
                    ),
                    sources=(*d.sources, model.source("service", service.name), templates.path(T_PROBE)),
                    tenant=d.name,
                    environment=env.name,
                    consumes=(
                        Contract("namespace", d.namespace, env.name, at=where),
                        Contract("prober_endpoint", prober or f"<no {PROBER_CHART} add-on>", env.name, at=where),
                        # The probed host must exist: the tenant root's Route 53 record for CloudFront.
                        Contract("dns_name", naming.hostname(service.name, d.name, d.environment), env.name, at=where),
                        *deployed_kinds(docs, naming.argocd_project(d.name, env.name), env.name, at=where),
                    ),
                )


def probe(d: Deployment, service: spec.Service, prober: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Probe",
        "metadata": {
            "name": probe_name(service.name),
            "namespace": d.namespace,
            "labels": {
                "app.kubernetes.io/part-of": service.name,
                "app.kubernetes.io/managed-by": emit.GENERATOR,
                **naming.tenant_labels(d),
            },
        },
        "spec": {
            "jobName": JOB,
            "interval": INTERVAL,
            "scrapeTimeout": TIMEOUT,
            "module": MODULE,
            "prober": {"url": prober, "scheme": "http", "path": "/probe"},
            "targets": {
                "staticConfig": {
                    "static": [url(d, service)],
                    "labels": {"tenant": d.name, "service": service.name, "environment": d.env, "tier": d.tier.name},
                }
            },
        },
    }
