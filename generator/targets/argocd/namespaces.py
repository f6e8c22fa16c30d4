"""A tenant's namespace, as data: Namespace, ResourceQuota, LimitRange, NetworkPolicies.

These are the fence around everything the tenant's Applications deploy, so the tenant's
own AppProject may not create or change any of them (a Namespace is cluster-scoped, and
quota or network policy edited from inside the fence would be no fence). They are
applied by the platform AppProject instead (``targets/argocd.py``).

Network policy: deny everything, then allow exactly what the services need -- traffic
inside the namespace, DNS, the ingress controller and Prometheus to the service ports,
HTTPS out (AWS APIs through the VPC endpoints) and PostgreSQL out for services (and their
migration Jobs) that use the database. Because every tenant namespace denies ingress by
default, an egress allowance here never opens another tenant's pods.
"""

from __future__ import annotations

from typing import Any

from generator.formats import emit
from generator.model import naming
from generator.model.resolve import Deployment, Model

POSTGRES_PORT = 5432
HTTPS_PORT = 443
#: Applied to containers that declare no resources (an injected sidecar); every container
#: the generator renders declares its own.
DEFAULT_LIMITS = {"cpu": "500m", "memory": "512Mi"}
DEFAULT_REQUESTS = {"cpu": "100m", "memory": "128Mi"}


def namespace_labels(d: Deployment) -> dict[str, str]:
    return {**naming.tenant_labels(d), "app.kubernetes.io/managed-by": emit.GENERATOR}


def documents(model: Model, d: Deployment) -> list[dict[str, Any]]:
    ns = d.namespace
    labels = namespace_labels(d)
    quota = d.settings.quota

    def meta(name: str) -> dict[str, Any]:
        return {"name": name, "namespace": ns, "labels": labels}

    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "labels": {
                    **labels,
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/audit": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
                # Offboarding deletes a namespace (and its data) on purpose, never as a prune.
                "annotations": {"argocd.argoproj.io/sync-options": "Prune=false", "argocd.argoproj.io/sync-wave": "-10"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": meta("tenant-quota"),
            "spec": {
                "hard": {
                    "requests.cpu": quota.requests_cpu,
                    "requests.memory": quota.requests_memory,
                    "limits.cpu": quota.limits_cpu,
                    "limits.memory": quota.limits_memory,
                    "pods": str(quota.pods),
                }
            },
        },
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": meta("tenant-limits"),
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        "default": DEFAULT_LIMITS,
                        "defaultRequest": DEFAULT_REQUESTS,
                        "max": {"cpu": quota.limits_cpu, "memory": quota.limits_memory},
                    }
                ]
            },
        },
        _policy(meta("default-deny"), {}, ingress=[], egress=[]),
        _policy(meta("allow-same-namespace"), {}, ingress=[{"from": [{"podSelector": {}}]}], egress=[{"to": [{"podSelector": {}}]}]),
        _policy(
            meta("allow-dns"),
            {},
            egress=[
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                }
            ],
        ),
    ]
    for service in d.services:
        ingress: list[dict[str, Any]] = []
        ports = [{"protocol": p.protocol, "port": p.port} for p in service.ports]
        if ports:
            sources = [_namespace_peer(model.platform.monitoring_namespace)]
            if d.public_ingress(service):
                sources.insert(0, _namespace_peer(model.platform.ingress_namespace))
            ingress.append({"from": sources, "ports": ports})
        egress_ports = [{"protocol": "TCP", "port": HTTPS_PORT}]
        if service.uses_database:
            egress_ports.append({"protocol": "TCP", "port": POSTGRES_PORT})
        docs.append(
            _policy(
                meta(f"allow-{service.name}"),
                {"app.kubernetes.io/name": naming.workload_name(service.name)},
                ingress=ingress or None,
                egress=[{"ports": egress_ports}],
            )
        )
        if service.migrations is not None and service.uses_database:
            docs.append(
                _policy(
                    meta(f"allow-{naming.migration_job_name(service.name)}"),
                    {"app.kubernetes.io/name": naming.migration_job_name(service.name)},
                    egress=[{"ports": [{"protocol": "TCP", "port": POSTGRES_PORT}]}],
                )
            )
    return docs


def _namespace_peer(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


def _policy(
    metadata: dict[str, Any], match: dict[str, str], *, ingress: list[Any] | None = None, egress: list[Any] | None = None
) -> dict[str, Any]:
    """A NetworkPolicy; ``ingress``/``egress`` None means "this policy says nothing about
    that direction", an empty list means "deny" (with the other policies adding up)."""
    spec: dict[str, Any] = {"podSelector": {"matchLabels": match} if match else {}}
    types = []
    if ingress is not None:
        types.append("Ingress")
        if ingress:
            spec["ingress"] = ingress
    if egress is not None:
        types.append("Egress")
        if egress:
            spec["egress"] = egress
    spec["policyTypes"] = types
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata, "spec": spec}
