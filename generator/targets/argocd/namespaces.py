"""A tenant's namespace, as data: Namespace, ResourceQuota, LimitRange, NetworkPolicies.

These are the fence around everything the tenant's Applications deploy, so the tenant's
own AppProject may not create or change any of them (a Namespace is cluster-scoped, and
quota or network policy edited from inside the fence would be no fence). They are
applied by the platform AppProject instead (``targets/argocd/target.py``).

Network policy: deny everything, then allow exactly what the services need -- traffic
inside the namespace, DNS, the ingress controller to the service ports, Prometheus's pods
to the metrics port, HTTPS out (AWS APIs through the VPC endpoints), OTLP to the node-local
collector's pods, the Kubernetes API for services whose pods get a flagd sidecar, and
PostgreSQL out for services (and their migration Jobs) that use the database. Because every
tenant namespace denies ingress by default, an egress allowance never opens another tenant's
pods (docs/observability.md).
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

from generator.catalog import spec
from generator.errors import Location
from generator.formats import emit
from generator.model import addons as model_addons
from generator.model import name_registry, naming, networks
from generator.model.resolve import Deployment, Model
from generator.targets import common
from generator.targets.argocd import rbac
from generator.targets.contracts import Contract

POSTGRES_PORT = 5432
#: Redis (ElastiCache, TLS) for services that declare ``uses_cache``.
REDIS_PORT = 6379
HTTPS_PORT = 443
#: The pods of the Prometheus the operator runs (kube-prometheus-stack): the only scrapers.
PROMETHEUS_POD = {"app.kubernetes.io/name": "prometheus"}
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
    # Held at zero pods until both ids are recorded: the pod group's and a vended account's.
    group_id = None if d.account_pending else pod_security_group_id(model, d)

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
            "metadata": _quota_metadata(meta("tenant-quota"), group_id, pending_account=d.account_pending),
            "spec": {
                "hard": {
                    "requests.cpu": quota.requests_cpu,
                    "requests.memory": quota.requests_memory,
                    "limits.cpu": quota.limits_cpu,
                    "limits.memory": quota.limits_memory,
                    # no pod may start before its security group is attached (docs/isolation.md)
                    "pods": str(quota.pods) if group_id else "0",
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
        if ports and d.public_ingress(service):
            ingress.append({"from": [_namespace_peer(model.platform.ingress_namespace)], "ports": ports})
        metrics = _metrics_port(d, service)
        if metrics is not None:
            scraper = {**_namespace_peer(model.platform.monitoring_namespace), "podSelector": {"matchLabels": dict(PROMETHEUS_POD)}}
            ingress.append({"from": [scraper], "ports": [metrics]})
        data_ports = [POSTGRES_PORT] if service.uses_database else []
        if service.uses_cache:
            data_ports.append(REDIS_PORT)
        workload = {"app.kubernetes.io/name": naming.workload_name(service.name)}
        docs.append(
            _policy(
                meta(f"allow-{service.name}"),
                workload,
                ingress=ingress or None,
                egress=[*_https_egress(model, d), *_otlp_egress(model, d), *_data_egress(model, d, data_ports)],
            )
        )
        if d.settings.services[service.name].flags:
            docs.append(
                _policy(meta(naming.flagd_network_policy_name(naming.workload_name(service.name))), workload, egress=_api_egress(model, d))
            )
        if service.migrations is not None and service.uses_database:
            docs.append(
                _policy(
                    meta(f"allow-{naming.migration_job_name(service.name)}"),
                    {"app.kubernetes.io/name": naming.migration_job_name(service.name)},
                    egress=_data_egress(model, d, [POSTGRES_PORT]),
                )
            )
    if group_id:
        docs.append(security_group_policy(model, d, meta(name_registry.SECURITY_GROUP_POLICY), group_id))
    reader = common.secret_reader(model, d)
    if reader is not None:
        docs.append(secret_store(reader, meta(reader.store)))
    docs += rbac.namespace_documents(model, d, meta(rbac.ROLE))
    return docs


# --- the tenant's SecretStore: cross-account reads of its own secrets only ---------------------

SECRET_STORE_API = "external-secrets.io/v1"


def secret_store(reader: common.SecretReader, metadata: dict[str, Any]) -> dict[str, Any]:
    """A namespaced SecretStore, so only this namespace's ExternalSecrets can use it. No
    ``auth``: the operator signs in with its own IRSA role (shared-services account; a
    namespaced store's ``serviceAccountRef`` could only name a service account in this
    namespace), then assumes the tenant's reader role in the account holding the secrets,
    passing the ExternalId and the ``esoNamespace`` session tag that role's trust demands.
    Applied by the platform project: the tenant's own AppProject may not create stores."""
    aws = {
        "service": "SecretsManager",
        "region": reader.region,
        "role": reader.role_arn,
        "externalID": reader.external_id,
        # ESO adds esoNamespace (the ExternalSecret's namespace), esoStoreName, esoStoreKind.
        "sessionTagsPolicy": "Simple",
    }
    return {"apiVersion": SECRET_STORE_API, "kind": "SecretStore", "metadata": metadata, "spec": {"provider": {"aws": aws}}}


def secret_store_contracts(model: Model, d: Deployment, docs: list[dict[str, Any]], at: Location) -> tuple[list[Contract], list[Contract]]:
    """Provides the SecretStore (with the role it assumes, as rendered); consumes that role
    trusting exactly ESO's role for this namespace and reading only this tenant's prefix, and
    ESO's role being allowed to assume it."""
    reader = common.secret_reader(model, d)
    provides: list[Contract] = []
    consumes: list[Contract] = []
    for doc in docs:
        if doc["kind"] != "SecretStore" or reader is None:
            continue
        role = str(doc["spec"]["provider"]["aws"].get("role", ""))
        provides.append(Contract("secret_store", f"{doc['metadata']['namespace']}/{doc['metadata']['name']}", d.env, detail=role, at=at))
        consumes.append(Contract("iam_role", role, d.env, detail=reader.trust_detail, at=at))
        consumes.append(Contract("iam_role", role, d.env, detail=reader.assume_detail, at=at))
    return provides, consumes


def telemetry_contracts(model: Model, d: Deployment, at: Location) -> list[Contract]:
    """The OTLP egress names the collector: its namespace and its endpoint must be rendered
    (by the add-on's Application) in this environment."""
    found = model_addons.collector(model.catalog, d.env)
    if found is None:
        return []
    return [
        Contract("namespace", found.namespace, d.env, at=at),
        Contract("otlp_endpoint", model_addons.otlp_endpoint(found), d.env, at=at),
    ]


# --- isolation: named egress destinations and the pod security group (docs/isolation.md) -------

#: Never an HTTPS destination outside the shared VPC's endpoint subnets: the private ranges,
#: where the other tenants' data VPCs and the cluster itself live.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


def _addresses(model: Model, d: Deployment) -> tuple[list[str], str]:
    """(the shared VPC's private subnets, which hold its interface endpoints; the CIDR of the VPC
    holding ``d``'s database and cache). Subnets as ``targets/terraform/addressing.py`` lays
    them out: a quarter of the VPC per zone (a test keeps the two in step)."""
    entry = networks.networks_entry(model.catalog)
    assert entry is not None, "networks.yaml is required and checked at load time"
    shared = networks.vpc_cidr(entry.spec, d.env, naming.SHARED_ROOT)
    zones = model.base_settings(None, d.env).network.az_count
    endpoints = [str(q) for q in list(shared.subnets(prefixlen_diff=2))[:zones]]
    key = naming.tenant_root(d.name) if d.dedicated else naming.pool_root(d.tier.name)
    return endpoints, str(networks.vpc_cidr(entry.spec, d.env, key))


def _https_egress(model: Model, d: Deployment) -> list[dict[str, Any]]:
    """HTTPS to the VPC endpoints, and to public AWS endpoints the environment has no interface
    endpoint for (SQS, SNS, KMS, Secrets Manager; S3 through its gateway endpoint), which are
    public addresses: never to a private range, so never to another tenant's VPC."""
    endpoints, _data = _addresses(model, d)
    public = {"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}
    return [
        {"to": [{"ipBlock": {"cidr": cidr}} for cidr in endpoints], "ports": [{"protocol": "TCP", "port": HTTPS_PORT}]},
        {"to": [public], "ports": [{"protocol": "TCP", "port": HTTPS_PORT}]},
    ]


def _metrics_port(d: Deployment, service: spec.Service) -> dict[str, Any] | None:
    """The port the service's ServiceMonitor scrapes (``common.scraped``, the same choice the
    observability target makes), or None when Prometheus scrapes nothing of it."""
    endpoint = common.scraped(d, service)
    if endpoint is None:
        return None
    port = next((p for p in service.ports if p.name == endpoint.port), None)
    return None if port is None else {"protocol": port.protocol, "port": port.port}


def _otlp_egress(model: Model, d: Deployment) -> list[dict[str, Any]]:
    """OTLP (gRPC and HTTP) to the collector's pods in its namespace only, where the
    environment installs a collector (the Helm values name it then: ``targets/helm.py``)."""
    found = model_addons.collector(model.catalog, d.env)
    if found is None:
        return []
    peer = {**_namespace_peer(found.namespace), "podSelector": {"matchLabels": model_addons.collector_selector(found)}}
    ports = [{"protocol": "TCP", "port": port} for port in (model_addons.OTLP_GRPC_PORT, model_addons.OTLP_HTTP_PORT)]
    return [{"to": [peer], "ports": ports}]


def kubernetes_service_ip(model: Model, d: Deployment) -> str:
    """The ``kubernetes`` Service's ClusterIP: EKS takes 172.20.0.0/16 for Services when the
    VPC is in 10.0.0.0/8, else 10.100.0.0/16 (the shared root sets no service CIDR), and the
    API server is the range's first address."""
    entry = networks.networks_entry(model.catalog)
    assert entry is not None, "networks.yaml is required and checked at load time"
    shared = networks.vpc_cidr(entry.spec, d.env, naming.SHARED_ROOT)
    return "172.20.0.1" if shared.subnet_of(IPv4Network("10.0.0.0/8")) else "10.100.0.1"


def _api_egress(model: Model, d: Deployment) -> list[dict[str, Any]]:
    """flagd (``provider: kubernetes``) watches its FeatureFlag through the API server: HTTPS to
    the ``kubernetes`` Service's address (the control plane's ENIs sit in the shared VPC's
    private subnets, which the service's own policy already allows on 443)."""
    return [{"to": [{"ipBlock": {"cidr": f"{kubernetes_service_ip(model, d)}/32"}}], "ports": [{"protocol": "TCP", "port": HTTPS_PORT}]}]


def _data_egress(model: Model, d: Deployment, ports: list[int]) -> list[dict[str, Any]]:
    """The database and cache ports, to the tenant's own data VPC (or its tier's pool) only."""
    if not ports:
        return []
    _endpoints, data = _addresses(model, d)
    return [{"to": [{"ipBlock": {"cidr": data}}], "ports": [{"protocol": "TCP", "port": port} for port in ports]}]


#: Applied after the Namespace (-10) and before the ResourceQuota (wave 0) that lets pods start.
SECURITY_GROUP_POLICY_WAVE = "-5"
#: On the ResourceQuota of a namespace held at ``pods: 0`` because its group id is not recorded.
HOLD_ANNOTATION = "companyos.io/held"


def pod_security_group_id(model: Model, d: Deployment) -> str | None:
    """The id of ``d``'s pod security group as recorded in ``catalog/networks.yaml``
    (``companyos record-pod-groups``, from the shared root's ``pod_security_group_ids``), or
    None before the shared root has created it. Never derived from the name: the VPC resource
    controller resolves ids only."""
    entry = networks.networks_entry(model.catalog)
    assert entry is not None, "networks.yaml is required and checked at load time"
    env = entry.spec.environments.get(d.env)
    return None if env is None else env.pod_security_groups.get(d.name)


def _quota_metadata(metadata: dict[str, Any], group_id: str | None, *, pending_account: bool = False) -> dict[str, Any]:
    """The quota applies after the SecurityGroupPolicy (default wave 0 > -5); a namespace whose
    group id (or vended account id) is not recorded yet says why its quota holds it at zero pods."""
    if group_id:
        return metadata
    why = (
        "vended account id not recorded: apply rendered/terraform/org, then run companyos record-accounts"
        if pending_account
        else "pod security group id not recorded: apply the shared root, then run companyos record-pod-groups"
    )
    return {**metadata, "annotations": {HOLD_ANNOTATION: why}}


def security_group_policy(model: Model, d: Deployment, metadata: dict[str, Any], group_id: str) -> dict[str, Any]:
    """Every pod of the namespace gets the tenant's pod security group (shared root,
    ``aws_security_group.pods``), the only group the tenant's database and cache admit, by the
    recorded id (the controller accepts nothing else); its Name tag is kept as an annotation
    for people."""
    group = name_registry.isolation_names(model.platform, d.env, d.name)["pods"]
    annotations = {"companyos.io/security-group-name": group, "argocd.argoproj.io/sync-wave": SECURITY_GROUP_POLICY_WAVE}
    return {
        "apiVersion": "vpcresources.k8s.aws/v1beta1",
        "kind": "SecurityGroupPolicy",
        "metadata": {**metadata, "annotations": annotations},
        "spec": {"podSelector": {}, "securityGroups": {"groupIds": [group_id]}},
    }


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
