"""Platform add-ons: ``rendered/argocd/<env>/addons.yaml``.

Per environment, from ``catalog/addons/*.yaml``: an AppProject fenced to exactly the add-ons'
chart repositories and namespaces, and one Helm Application per add-on at its sync wave (all
before the tenants' AppProjects at -1 and ApplicationSet at 0). The IRSA roles the
service-account annotations name are created by the shared Terraform root (``addons.tf``).
There is no ClusterSecretStore: each tenant namespace has its own SecretStore assuming the
tenant's reader role in the account that holds its secrets (``targets/argocd/namespaces.py``),
so no store can read across tenants or accounts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator.catalog import spec
from generator.formats.templating import Templates
from generator.model import addons as model_addons
from generator.model import naming, networks
from generator.model.resolve import Model
from generator.targets.base import RenderedFile
from generator.targets.contracts import Contract, Kind, deployed_kinds, whitelist
from generator.targets.contracts import at as contract_at

NAME = "addons"
#: Each environment's files depend on that environment's slice of the model only (see parallel.py).
PER_ENVIRONMENT = True
API = "argoproj.io/v1alpha1"
WAVE = "argocd.argoproj.io/sync-wave"
ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
T_ADDONS = "addons/addons.yaml.j2"
#: Cluster-scoped kinds the add-on charts create (CRDs, RBAC, webhooks, the metrics API,
#: IngressClasses) plus the Namespaces ``CreateNamespace=true`` makes.
CLUSTER_KINDS: tuple[tuple[str, str], ...] = (
    ("", "Namespace"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("elbv2.k8s.aws", "IngressClassParams"),
    ("networking.k8s.io", "IngressClass"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
)


def addons_path(env: str) -> str:
    return f"rendered/argocd/{env}/addons.yaml"


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    for env in model.environments:
        chosen = model_addons.in_environment(model.catalog, env.name)
        if not chosen:
            continue
        env_sources = (model.source("platform", "platform"), model.source("environment", env.name))
        # every cell's cluster gets every add-on (cells come from the environment file, so
        # this file does not change when a tenant is added)
        docs = [project(model, env, chosen), *(application(model, env, a, c) for c in networks.cells(env) for a in chosen)]
        provides, consumes = contracts(model, env, chosen, docs)
        yield RenderedFile(
            path=addons_path(env.name),
            text=templates.render(T_ADDONS, env=env, documents=docs),
            sources=(*env_sources, *(model.source("addon", a.name) for a in chosen), templates.path(T_ADDONS)),
            environment=env.name,
            provides=provides,
            consumes=consumes,
        )


#: What a chart serves that others address by URL: chart name -> (contract kind, address
#: template over the chart's fullname and the add-on's namespace).
CHART_ENDPOINTS: dict[str, tuple[Kind, str]] = {
    "kube-prometheus-stack": ("prometheus_endpoint", "http://{fullname}-prometheus.{namespace}.svc:9090"),
    "prometheus-blackbox-exporter": ("prober_endpoint", "{fullname}.{namespace}.svc:9115"),
    # The collector's Service (the chart creates it for a DaemonSet when service.enabled is set).
    "opentelemetry-collector": ("otlp_endpoint", "http://{fullname}.{namespace}.svc:4318"),
}


def served_apis(addon: spec.Addon) -> list[tuple[Kind, str]]:
    """The aggregated APIs and IngressClasses an add-on's chart creates with its values (chart
    defaults where unset): metrics-server registers ``metrics.k8s.io`` (``apiService.create``,
    default true), which every HorizontalPodAutoscaler reads; the LB controller creates the
    IngressClass ``ingressClass`` (default ``alb``) when ``createIngressClassResource`` (default
    true), which every tenant Ingress names."""
    values = addon.values
    if addon.chart.name == "metrics-server" and (values.get("apiService") or {}).get("create", True) is not False:
        return [("api_service", METRICS_API)]
    if addon.chart.name == "aws-load-balancer-controller" and values.get("createIngressClassResource", True) is not False:
        return [("ingress_class", str(values.get("ingressClass") or "alb"))]
    return []


#: The resource metrics API a HorizontalPodAutoscaler on CPU or memory reads.
METRICS_API = "metrics.k8s.io"


def dashboard_selector(addon: spec.Addon) -> str | None:
    """``label=value`` of the ConfigMaps a Grafana add-on's sidecar loads from every namespace
    (the tenants' dashboards live in their own namespaces); None when it loads none of them."""
    if addon.chart.name != "grafana":
        return None
    board = ((addon.values.get("sidecar") or {}).get("dashboards")) or {}
    if not board.get("enabled") or board.get("searchNamespace") != "ALL":
        return None
    return f"{board.get('label', 'grafana_dashboard')}={board.get('labelValue', '1')}"


def contracts(
    model: Model, env: spec.Environment, chosen: list[spec.Addon], docs: list[dict[str, Any]]
) -> tuple[tuple[Contract, ...], tuple[Contract, ...]]:
    """Provides each add-on's CRD kinds, namespace, service account and served endpoint, and
    the AppProject's whitelist; consumes each IRSA role (trusting exactly that service account)."""
    provides: list[Contract] = [*whitelist(docs[0]["metadata"]["name"], env.name, docs[0]["spec"]["clusterResourceWhitelist"])]
    provides += whitelist(docs[0]["metadata"]["name"], env.name, docs[0]["spec"]["namespaceResourceWhitelist"])
    consumes: list[Contract] = [*deployed_kinds(docs, naming.gitops_project(model.platform, env.name), env.name)]
    for addon in chosen:
        for i, kind in enumerate(addon.provides_crds):
            where = contract_at(model, "addon", addon.name, "provides_crds", i)
            provides.append(Contract("crd_kind", kind, env.name, detail=addon.name, at=where))
        provides.append(Contract("namespace", addon.namespace, env.name, at=contract_at(model, "addon", addon.name, "namespace")))
        if addon.service_account is not None:
            where = contract_at(model, "addon", addon.name, "service_account")
            sub = model_addons.subject(addon)
            provides.append(Contract("service_account", sub, env.name, at=where))
            arn = model_addons.role_arn(env.accounts.shared_services, model.platform, env.name, addon.name)
            consumes.append(Contract("iam_role", arn, env.name, detail=sub, at=where))
        for i, kind in enumerate(addon.requires_crds):
            consumes.append(Contract("crd_kind", kind, env.name, at=contract_at(model, "addon", addon.name, "requires_crds", i)))
        selector = dashboard_selector(addon)
        if selector is not None:
            where = contract_at(model, "addon", addon.name, "values", "sidecar")
            provides.append(Contract("dashboard_sidecar", selector, env.name, detail=addon.name, at=where))
        for kind, name in served_apis(addon):
            provides.append(Contract(kind, name, env.name, detail=addon.name, at=contract_at(model, "addon", addon.name, "chart", "name")))
        served = CHART_ENDPOINTS.get(addon.chart.name)
        if served is not None and served[0] == "otlp_endpoint" and not (addon.values.get("service") or {}).get("enabled"):
            served = None  # a DaemonSet collector without service.enabled has no Service to send to
        if served is not None:
            fullname = str(addon.values.get("fullnameOverride") or addon.name)
            url = served[1].format(fullname=fullname, namespace=addon.namespace)
            where = contract_at(model, "addon", addon.name, "chart", "name")
            provides.append(Contract(served[0], url, env.name, detail=addon.name, at=where))
    return tuple(provides), tuple(consumes)


def project_wave(chosen: list[spec.Addon]) -> int:
    """The AppProject syncs before the first Application that names it."""
    return min(a.sync_wave for a in chosen) - 1


def project(model: Model, env: spec.Environment, chosen: list[spec.Addon]) -> dict[str, Any]:
    """Fenced to exactly the add-ons' chart repositories and their namespaces on the
    environment's cluster."""
    clusters = [networks.cell_cluster(model.platform, env, c.name) for c in networks.cells(env)]
    repos = {a.chart.repository for a in chosen}
    return {
        "apiVersion": API,
        "kind": "AppProject",
        "metadata": {
            "name": naming.addon_project(model.platform, env.name),
            "namespace": model.platform.argocd_namespace,
            "labels": naming.environment_labels(env.name),
            "annotations": {WAVE: str(project_wave(chosen))},
        },
        "spec": {
            # An AppProject description has at most 255 characters: name them while they fit.
            "description": _description(env.name, [a.name for a in chosen]),
            "sourceRepos": sorted(repos),
            "destinations": [{"name": cluster, "namespace": ns} for cluster in clusters for ns in sorted({a.namespace for a in chosen})],
            "clusterResourceWhitelist": [{"group": g, "kind": k} for g, k in CLUSTER_KINDS],
            # Any namespaced kind, but only in the add-ons' own namespaces (the destinations).
            "namespaceResourceWhitelist": [{"group": "*", "kind": "*"}],
            "orphanedResources": {"warn": True},
        },
    }


def _description(env: str, names: list[str]) -> str:
    full = f"Platform add-ons of {env}: {', '.join(names)}"
    return full if len(full) <= 255 else f"Platform add-ons of {env} ({len(names)}, listed in the Applications of this file)"


def values(model: Model, env: spec.Environment, addon: spec.Addon, cluster: str | None = None) -> dict[str, Any]:
    """The catalog values with placeholders filled (``{cluster}``: the cell's), plus the IRSA service account."""
    known = model_addons.addon_placeholders(model.platform, env, addon)
    if cluster is not None:
        known = {**known, "cluster": cluster}
    out: dict[str, Any] = model_addons.fill_values(model_addons.merged_values(addon, env.name), known)
    if addon.service_account is not None:
        sa = dict(out.get("serviceAccount") or {})
        annotations = dict(sa.get("annotations") or {})
        annotations[ROLE_ANNOTATION] = model_addons.role_arn(env.accounts.shared_services, model.platform, env.name, addon.name)
        out["serviceAccount"] = {**sa, "create": True, "name": addon.service_account, "annotations": annotations}
    return out


def _sync_policy() -> dict[str, Any]:
    return {
        "automated": {"prune": True, "selfHeal": True},
        # Server-side apply: CRDs such as Prometheus's exceed the last-applied annotation limit.
        "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"],
        "retry": {"limit": 5, "backoff": {"duration": "30s", "factor": 2, "maxDuration": "10m"}},
    }


def _metadata(model: Model, env: spec.Environment, name: str, addon: str, wave: int) -> dict[str, Any]:
    return {
        "name": naming.addon_application(env.name, name),
        "namespace": model.platform.argocd_namespace,
        "labels": {**naming.environment_labels(env.name), "companyos.io/addon": addon},
        "annotations": {WAVE: str(wave)},
        "finalizers": ["resources-finalizer.argocd.argoproj.io"],
    }


def application(model: Model, env: spec.Environment, addon: spec.Addon, cell: spec.Cell | None = None) -> dict[str, Any]:
    """The add-on on one cell's cluster (default: the first cell's, the environment's cluster);
    beyond the first cell the Application's name ends in ``-<cell>``."""
    first = networks.cells(env)[0]
    cell = cell or first
    cluster = networks.cell_cluster(model.platform, env, cell.name)
    source: dict[str, Any] = {
        "repoURL": addon.chart.repository,
        "chart": addon.chart.name,
        "targetRevision": addon.chart.version,
        "helm": {"releaseName": addon.name, "valuesObject": values(model, env, addon, cluster)},
    }
    name = addon.name if cell.name == first.name else f"{addon.name}-{cell.name}"
    metadata = _metadata(model, env, name, addon.name, addon.sync_wave)
    if cell.name != first.name:
        metadata["labels"]["companyos.io/cell"] = cell.name
    return {
        "apiVersion": API,
        "kind": "Application",
        "metadata": metadata,
        "spec": {
            "project": naming.addon_project(model.platform, env.name),
            "destination": {"name": cluster, "namespace": addon.namespace},
            "source": source,
            "syncPolicy": _sync_policy(),
        },
    }
