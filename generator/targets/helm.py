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
from generator.model import addons as model_addons
from generator.model import naming
from generator.model.resolve import Deployment, Model
from generator.targets import common as hardening
from generator.targets.base import RenderedFile
from generator.targets.common import canary_enabled, flag_source_name, values_path
from generator.targets.contracts import Contract, deployed_kinds
from generator.targets.contracts import at as contract_at

NAME = "helm"
#: Each environment's files depend on that environment's slice of the model only (see parallel.py).
PER_ENVIRONMENT = True
TEMPLATE = "helm/values.yaml.j2"


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    template_source = templates.path(TEMPLATE)
    for d in model.rendered_deployments:  # an incremental render (output/units.py) names a few
        if d.account_pending:  # a held vended account
            continue
        for service in d.services:
            ctx = context(model, d, service)
            provides, consumes = contracts(model, d, service, ctx)
            yield RenderedFile(
                path=values_path(d.env, d.name, service.name),
                text=templates.render(TEMPLATE, **ctx),
                sources=(*d.sources, model.source("service", service.name), template_source),
                tenant=d.name,
                environment=d.env,
                provides=provides,
                consumes=consumes,
            )


def chart_kinds(d: Deployment, service: Service, ctx: dict[str, Any]) -> list[dict[str, str]]:
    """The objects the chart renders with these values (``apiVersion``/``kind`` only)."""
    settings = ctx["settings"]
    kinds = [("apps/v1", "Deployment"), ("v1", "ServiceAccount")]
    if service.ports:
        kinds.append(("v1", "Service"))
    if ctx["ingress_enabled"]:
        kinds.append(("networking.k8s.io/v1", "Ingress"))
    if settings.autoscaling.enabled and not ctx["rollout"] and not ctx["keda"]:
        kinds.append(("autoscaling/v2", "HorizontalPodAutoscaler"))
    if settings.replicas > 1:
        kinds.append(("policy/v1", "PodDisruptionBudget"))
    if ctx["secret_files"]:
        kinds.append(("external-secrets.io/v1", "ExternalSecret"))
    return [{"apiVersion": a, "kind": k} for a, k in kinds]


def contracts(model: Model, d: Deployment, service: Service, ctx: dict[str, Any]) -> tuple[tuple[Contract, ...], tuple[Contract, ...]]:
    """Provides the service account (and, through external-dns, the origin record); consumes
    the IRSA role trusting exactly that account, the secrets, namespace, hosts and kinds."""
    env = d.env
    subject = f"{d.namespace}:{service.name}"
    in_tenant = contract_at(model, "tenant", d.name, "services", d.tenant.services.index(service.name))
    in_service = contract_at(model, "service", service.name)
    provides = [Contract("service_account", subject, env, at=in_tenant)]
    consumes = [
        Contract("namespace", d.namespace, env, at=in_tenant),
        Contract("iam_role", ctx["role_arn"], env, detail=subject, at=in_tenant),
        *deployed_kinds(chart_kinds(d, service, ctx), naming.argocd_project(d.name, env), env, at=in_service),
    ]
    # Read through the namespace's SecretStore, as the tenant's reader role in the secrets' account.
    reader = hardening.secret_reader(model, d)
    detail = reader.secret_detail if reader is not None else ""
    if ctx["secret_files"]:
        store = ctx["secret_store"]
        role = reader.role_arn if reader is not None else ""
        consumes.append(Contract("secret_store", f"{d.namespace}/{store['name']}", env, detail=role, at=in_service))
    for i, ref in enumerate(service.secrets):
        where = contract_at(model, "service", service.name, "secrets", i, "key")
        consumes.append(Contract("secret", naming.secret_key(ref.key, d.name, env), env, detail=detail, at=where))
    for name in ("database", "cache"):
        entry = ctx["secret_files"].get(name)
        if entry is not None:
            where = contract_at(model, "service", service.name, f"uses_{name}")
            consumes.append(Contract("secret", entry["dataFrom"]["key"], env, detail=detail, at=where))
    if ctx["otlp_endpoint"] is not None:
        where = contract_at(model, "addon", model_addons.COLLECTOR_CHART)
        consumes.append(Contract("otlp_endpoint", ctx["otlp_endpoint"], env, at=where))
    if ctx["flag_source"] is not None:
        where = contract_at(model, "service", service.name, "defaults", "flags")
        consumes.append(Contract("flag_source", f"{d.namespace}/{ctx['flag_source']}", env, at=where))
    if any(k["kind"] == "HorizontalPodAutoscaler" for k in chart_kinds(d, service, ctx)):
        # The chart's HPA scales on CPU and memory: the resource metrics API (metrics-server add-on).
        where = contract_at(model, "service", service.name, "defaults", "autoscaling")
        consumes.append(Contract("api_service", "metrics.k8s.io", env, at=where))
    if ctx["ingress_enabled"]:
        where = contract_at(model, "service", service.name, "ingress")
        # The Ingress names the class; the LB controller add-on must create it.
        consumes.append(Contract("ingress_class", model.platform.ingress_class, env, at=where))
        provides.append(Contract("dns_name", ctx["origin_host"], env, at=where))  # external-dns, from the annotation
        consumes += [
            Contract("dns_name", ctx["host"], env, at=where),
            Contract("certificate", ctx["host"], env, detail=d.environment.aws.region, at=where),
            Contract("certificate", ctx["origin_host"], env, detail=d.environment.aws.region, at=where),
        ]
    return tuple(provides), tuple(consumes)


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
    if service.uses_cache:
        files["cache"] = {"dataFrom": {"key": naming.cache_secret_key(model.platform, d.env, d.name)}}
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
        "image_repository": d.image_repository(service.name),
        "image_digest": d.image_digest(service.name),
        "labels": naming.tenant_labels(d),
        "probes": probes,
        "secret_files": secret_files(model, d, service),
        # The namespace's own SecretStore (targets/argocd/namespaces.py), never a cluster-wide one.
        "secret_store": {"name": model.platform.secret_store, "kind": "SecretStore"},
        "ingress_enabled": d.public_ingress(service),
        # An Argo Rollout owns the pods (workloadRef): the Deployment gets no replica
        # count of its own and the chart's HPA stays off (the Rollout's HPA scales).
        "rollout": canary_enabled(d, service),
        # KEDA's ScaledObject (targets/capacity.py) owns the replica count and the HPA.
        "keda": hardening.keda_scaled(model, d, service),
        "placement": hardening.placement(model, d, service),
        # OTLP to the environment's node-local collector (its NetworkPolicy egress: targets/argocd/namespaces.py).
        "otlp_endpoint": otlp_endpoint(model, d),
        "otel_attributes": f"deployment.environment.name={d.env},tenant={d.name},tier={d.tier.name}",
        # The OpenFeature operator injects flagd serving this FeatureFlagSource (targets/feature_flags.py).
        "flag_source": flag_source_name(service.name) if d.settings.services[service.name].flags else None,
        "ingress_group": naming.ingress_group(model.platform, d.env, d.name),
        "host": naming.hostname(service.name, d.name, d.environment),
        # CloudFront's origin: external-dns points it at the ALB; the ALB's certificate
        # (Terraform, tenant root) covers it and the public host.
        "origin_host": naming.ingress_origin_hostname(d.name, d.environment),
        "role_arn": naming.irsa_role_arn(d.account_id, model.platform, d.env, d.name, service.name),
        "pod_security": hardening.pod_security_context(),
        "container_security": hardening.container_security_context(),
    }


def otlp_endpoint(model: Model, d: Deployment) -> str | None:
    """The collector's OTLP/HTTP address, or None where the environment installs no collector."""
    found = model_addons.collector(model.catalog, d.env)
    return model_addons.otlp_endpoint(found) if found is not None else None
