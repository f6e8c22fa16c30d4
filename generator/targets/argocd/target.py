"""Argo CD delivery: ApplicationSets, AppProjects, tenant namespaces and canary Rollouts.

Per environment, under ``rendered/argocd/<env>/``: ``applicationsets.yaml`` (one ApplicationSet
per cell, a git files generator over ``cells/<cell>/<tenant>.json``, one element per service),
``projects/<tenant>.yaml``, ``platform.yaml`` (the platform AppProject), ``tenants/<tenant>.yaml``
(the namespace Application), ``namespaces/<tenant>.yaml``, ``rollouts/<tenant>/<service>.yaml``
where a canary is enabled, ``controller-values.yaml`` (controller shards per cell) and
``bootstrap.yaml`` (applied once by hand). No file lists the fleet, so a tenant's change touches
its own files only. What each file holds and who applies it: docs/delivery.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from generator.catalog import spec
from generator.errors import Location
from generator.formats import emit
from generator.formats.templating import Templates
from generator.model import naming, networks
from generator.model.resolve import Deployment, Model
from generator.targets.argocd import clusters as argocd_clusters
from generator.targets.argocd import namespaces as argocd_namespaces
from generator.targets.argocd import rbac as argocd_rbac
from generator.targets.argocd import rollouts as argocd_rollouts
from generator.targets.argocd import standby as argocd_standby
from generator.targets.base import RenderedFile
from generator.targets.common import (
    ARGOCD_CONTROLLER_SA,
    argocd_controller_role_arn,
    canary_enabled,
    dashboard_path,
    flags_path,
    ingress_group_key,
    job_path,
    keda_scaled,
    probe_path,
    scaling_path,
    slo_rules_path,
    values_path,
)
from generator.targets.contracts import Contract, deployed_kinds, whitelist
from generator.targets.contracts import at as contract_at

NAME = "argocd"
#: Each environment's files depend on that environment's slice of the model only (see parallel.py).
PER_ENVIRONMENT = True
#: Rough work per deployment relative to the Helm target (only schedules parallel renders).
RELATIVE_COST = 3
API = "argoproj.io/v1alpha1"
T_APPSETS = "argocd/applicationsets.yaml.j2"
T_PROJECT = "argocd/project.yaml.j2"
T_PLATFORM = "argocd/platform.yaml.j2"
T_NAMESPACE = "argocd/namespace.yaml.j2"
T_ROLLOUT = "argocd/rollout.yaml.j2"
T_BOOTSTRAP = "argocd/bootstrap.yaml.j2"
T_NAMESPACE_APP = "argocd/namespace-application.yaml.j2"
T_SHARDING = "argocd/controller-values.yaml.j2"
#: One controller shard per cell; round-robin spreads the cell clusters evenly over them.
SHARDING_ALGORITHM = "round-robin"
#: Where Argo CD itself runs, as Argo CD names its own cluster.
IN_CLUSTER = argocd_clusters.IN_CLUSTER
CANARY_WAVE = "canary"
#: AppProjects sync before the Applications that name them.
PROJECT_FIRST = {"argocd.argoproj.io/sync-wave": "-1"}

#: What a tenant's Applications may create in the tenant's namespace: what the chart
#: renders with our values, the migration hooks, the canary objects, the SLO rules and the scrape. Namespace-level
#: policy (ResourceQuota, LimitRange, NetworkPolicy) and RBAC are deliberately absent.
TENANT_KINDS: tuple[tuple[str, str], ...] = (
    ("", "ConfigMap"),
    ("", "Service"),
    ("", "ServiceAccount"),
    ("apps", "Deployment"),
    ("argoproj.io", "AnalysisTemplate"),
    ("argoproj.io", "Rollout"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("batch", "Job"),
    ("core.openfeature.dev", "FeatureFlag"),
    ("core.openfeature.dev", "FeatureFlagSource"),
    ("external-secrets.io", "ExternalSecret"),
    # KEDA scaling of queue consumers (targets/capacity.py): its ScaledObject owns the HPA.
    ("keda.sh", "ScaledObject"),
    ("keda.sh", "TriggerAuthentication"),
    ("monitoring.coreos.com", "Probe"),
    ("monitoring.coreos.com", "PrometheusRule"),
    ("monitoring.coreos.com", "ServiceMonitor"),
    ("networking.k8s.io", "Ingress"),
    ("policy", "PodDisruptionBudget"),
)
PLATFORM_NAMESPACED_KINDS: tuple[tuple[str, str], ...] = (
    ("", "LimitRange"),
    ("", "ResourceQuota"),
    ("networking.k8s.io", "NetworkPolicy"),
    # The pod security group of the namespace (namespaces.security_group_policy); found by the contract check.
    ("vpcresources.k8s.aws", "SecurityGroupPolicy"),
    # The tenant's SecretStore (namespaces.secret_store): tenants read through it, never create one.
    ("external-secrets.io", "SecretStore"),
    # The tenant team's read-only access to its namespace (argocd/rbac.py).
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
)
#: What the pools' bootstrap Applications create in ``<org>-pools`` (targets/pool_bootstrap.py).
#: The admin path (pool-admin.yaml): its SecretStore and SecurityGroupPolicy are platform kinds already.
POOL_BOOTSTRAP_KINDS: tuple[tuple[str, str], ...] = (("", "ConfigMap"), ("batch", "Job"), ("external-secrets.io", "ExternalSecret"))


def argocd_dir(env: str) -> str:
    return f"rendered/argocd/{env}"


def rollout_path(env: str, tenant: str, service: str) -> str:
    return f"{argocd_dir(env)}/rollouts/{tenant}/{service}.yaml"


def namespace_path(env: str, tenant: str) -> str:
    return f"{argocd_dir(env)}/namespaces/{tenant}.yaml"


def cell_dir(env: str, cell: str) -> str:
    """The folder the cell's ApplicationSet reads with its git files generator."""
    return f"{argocd_dir(env)}/cells/{cell}"


def tenant_elements_path(env: str, cell: str, tenant: str) -> str:
    """The tenant's Applications in one environment: a JSON array, one element per service."""
    return f"{cell_dir(env, cell)}/{tenant}.json"


def namespace_application_path(env: str, tenant: str) -> str:
    return f"{argocd_dir(env)}/tenants/{tenant}.yaml"


def sharding_path(env: str) -> str:
    return f"{argocd_dir(env)}/controller-values.yaml"


def applicationset_name(env: spec.Environment, cell: str) -> str:
    """The first cell's keeps the environment's name, so adding cells renames nothing."""
    base = naming.applicationset_name(env.name)
    return base if cell == networks.cells(env)[0].name else f"{base}-{cell}"


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    for env in model.environments:
        deployments = model.in_environment(env.name)
        if not deployments:
            continue
        env_sources = (model.source("platform", "platform"), model.source("environment", env.name))
        gitops = naming.gitops_project(model.platform, env.name)
        in_env = contract_at(model, "environment", env.name)
        cell_sources = (
            *env_sources,
            *(model.source("tier", t) for t in sorted(model.catalog.tiers)),
            *((networks.NETWORKS_PATH,) if len(networks.cells(env)) > 1 else ()),
        )
        appsets = [applicationset(model, env, cell.name) for cell in networks.cells(env)]
        yield _file(
            templates,
            T_APPSETS,
            f"{argocd_dir(env.name)}/applicationsets.yaml",
            cell_sources,
            env=env,
            waves=all_waves(model),
            documents=appsets,
            environment=env.name,
            consumes=(
                *deployed_kinds(appsets, gitops, env.name, at=in_env),
                *argocd_clusters.destinations_consumed(model, env, appsets, in_env),
            ),
        )
        boot = bootstrap_documents(model, env)
        yield _file(
            templates,
            T_BOOTSTRAP,
            f"{argocd_dir(env.name)}/bootstrap.yaml",
            env_sources,
            env=env,
            documents=boot,
            environment=env.name,
            provides=(*project_whitelist(boot[0], env.name, in_env), *argocd_clusters.own_cluster(model, env)),
            consumes=tuple(argocd_clusters.destinations_consumed(model, env, boot, in_env)),
        )
        platform = platform_documents(model, env)
        yield _file(
            templates,
            T_PLATFORM,
            f"{argocd_dir(env.name)}/platform.yaml",
            cell_sources,
            env=env,
            documents=platform,
            environment=env.name,
            provides=project_whitelist(platform[0], env.name, in_env),
            consumes=(
                *deployed_kinds(platform, gitops, env.name, at=in_env),
                *argocd_clusters.destinations_consumed(model, env, platform, in_env),
            ),
        )
        yield _file(
            templates,
            T_SHARDING,
            sharding_path(env.name),
            cell_sources,
            env=env,
            cells=[{"name": c.name, "cluster": networks.cell_cluster(model.platform, env, c.name)} for c in networks.cells(env)],
            values=controller_values(env, model.platform),
            environment=env.name,
            consumes=controller_roles(model, env),
        )
        yield from argocd_standby.render(model, templates, env, extras_include(env.name))
        yield from argocd_clusters.render(model, templates, env)
        for d in model.rendered_in(env.name):  # an incremental render (output/units.py) names a few
            service_sources = tuple(model.source("service", s.name) for s in d.services)
            in_tenant = contract_at(model, "tenant", d.name, "name")
            project = app_project(model, d)
            yield _file(
                templates,
                T_PROJECT,
                f"{argocd_dir(env.name)}/projects/{d.name}.yaml",
                (*d.sources, *service_sources),
                d=d,
                documents=[project],
                tenant=d.name,
                environment=env.name,
                provides=project_whitelist(project, env.name, in_tenant),
                consumes=(
                    *deployed_kinds([project], gitops, env.name, at=in_tenant),
                    *argocd_clusters.destinations_consumed(model, env, [project], in_tenant),
                ),
            )
            cell = networks.tenant_cell(model.catalog, env.name, d.name)
            # A vended account whose id is not recorded yet: no Applications (no workloads) until
            # `companyos record-accounts`; the namespace renders held (argocd/namespaces.py).
            elements = [] if d.account_pending else [element(model, d, s) for s in d.services]
            yield RenderedFile(
                path=tenant_elements_path(env.name, cell, d.name),
                text=json.dumps(elements, indent=2, ensure_ascii=False) + "\n",
                sources=(*d.sources, *service_sources, *((networks.NETWORKS_PATH,) if len(networks.cells(env)) > 1 else ())),
                comment=None,
                tenant=d.name,
                environment=env.name,
                provides=ingress_groups(model, d) if elements else (),
                consumes=(Contract("namespace", d.namespace, env.name, at=in_tenant),),
            )
            namespace_app = [namespace_application(model, env, d)]
            yield _file(
                templates,
                T_NAMESPACE_APP,
                namespace_application_path(env.name, d.name),
                (*d.sources, *((networks.NETWORKS_PATH,) if len(networks.cells(env)) > 1 else ())),
                d=d,
                documents=namespace_app,
                tenant=d.name,
                environment=env.name,
                consumes=(
                    *deployed_kinds(namespace_app, gitops, env.name, at=in_tenant),
                    *argocd_clusters.destinations_consumed(model, env, namespace_app, in_tenant),
                ),
            )
            fence = argocd_namespaces.documents(model, d)
            store_provides, store_consumes = argocd_namespaces.secret_store_contracts(model, d, fence, in_tenant)
            yield _file(
                templates,
                T_NAMESPACE,
                namespace_path(env.name, d.name),
                (*d.sources, *service_sources),
                d=d,
                documents=fence,
                tenant=d.name,
                environment=env.name,
                provides=(Contract("namespace", d.namespace, env.name, at=in_tenant), *store_provides),
                consumes=(
                    *deployed_kinds(fence, naming.platform_project(model.platform, env.name), env.name, at=in_tenant),
                    *store_consumes,
                    *argocd_namespaces.telemetry_contracts(model, d, in_tenant),
                ),
            )
            for service in d.services:
                if canary_enabled(d, service) and not d.account_pending:
                    canary = argocd_rollouts.rollout_documents(d, service, app_labels(d, service), keda=keda_scaled(model, d, service))
                    yield _file(
                        templates,
                        T_ROLLOUT,
                        rollout_path(env.name, d.name, service.name),
                        (*d.sources, model.source("service", service.name)),
                        d=d,
                        service=service,
                        documents=canary,
                        tenant=d.name,
                        environment=env.name,
                        consumes=rollout_consumes(model, d, service, canary),
                    )


def project_whitelist(project: dict[str, Any], env: str, at: Location) -> tuple[Contract, ...]:
    """An AppProject's cluster and namespace whitelists, as ``argocd_kind`` contracts."""
    spec_ = project["spec"]
    entries = [*spec_.get("clusterResourceWhitelist", []), *spec_.get("namespaceResourceWhitelist", [])]
    return tuple(whitelist(project["metadata"]["name"], env, entries, at=at))


def rollout_consumes(model: Model, d: Deployment, service: spec.Service, docs: list[dict[str, Any]]) -> tuple[Contract, ...]:
    """The kinds (in the tenant's AppProject, CRDs from an add-on), the namespace and the
    Prometheus every AnalysisTemplate queries."""
    where = contract_at(model, "service", service.name, "canary")
    project = naming.argocd_project(d.name, d.env)
    out = [Contract("namespace", d.namespace, d.env, at=where), *deployed_kinds(docs, project, d.env, at=where)]
    for doc in docs:
        if doc.get("kind") == "HorizontalPodAutoscaler" and any(m.get("type") == "Resource" for m in doc["spec"].get("metrics", [])):
            # CPU and memory come from the resource metrics API (the metrics-server add-on).
            scaling = contract_at(model, "service", service.name, "defaults", "autoscaling")
            out.append(Contract("api_service", "metrics.k8s.io", d.env, at=scaling))
        if doc.get("kind") == "AnalysisTemplate":
            for metric in doc["spec"].get("metrics", []):
                prometheus = metric.get("provider", {}).get("prometheus")
                if prometheus is not None:
                    out.append(Contract("prometheus_endpoint", prometheus["address"], d.env, at=where))
    return tuple(out)


def _file(
    templates: Templates,
    template: str,
    path: str,
    sources: tuple[str, ...],
    *,
    tenant: str | None = None,
    environment: str | None = None,
    provides: tuple[Contract, ...] = (),
    consumes: tuple[Contract, ...] = (),
    **context: Any,
) -> RenderedFile:
    return RenderedFile(
        path=path,
        text=templates.render(template, **context),
        sources=(*sources, templates.path(template)),
        tenant=tenant,
        environment=environment,
        provides=provides,
        consumes=consumes,
    )


def _services(deployments: tuple[Deployment, ...]) -> list[spec.Service]:
    return sorted({s.name: s for d in deployments for s in d.services}.values(), key=lambda s: s.name)


# --- waves -------------------------------------------------------------------------------


def wave(d: Deployment) -> str:
    """The progressive-sync wave label of a tenant: ``canary`` or its tier's name."""
    return CANARY_WAVE if d.tenant.canary else d.tier.name


def all_waves(model: Model) -> list[str]:
    """Every wave any tenant could be in (canary, pooled tiers, dedicated tiers): the
    ApplicationSets list these, not the waves present, so onboarding a tenant of a tier
    nobody used yet does not rewrite them (a step that matches no Application is skipped)."""
    tiers = sorted((entry.spec for entry in model.catalog.tiers.values()), key=lambda t: (t.isolation == "dedicated", t.name))
    return [CANARY_WAVE, *(t.name for t in tiers)]


def waves(deployments: tuple[Deployment, ...]) -> list[str]:
    """Waves in sync order: canary tenants, then pooled tiers, then dedicated tiers (each
    group by name), so shared data planes see a release before isolated ones."""
    present = {wave(d) for d in deployments}
    tiers = sorted(
        {d.tier.name: d.tier for d in deployments if not d.tenant.canary}.values(), key=lambda t: (t.isolation == "dedicated", t.name)
    )
    return ([CANARY_WAVE] if CANARY_WAVE in present else []) + [t.name for t in tiers if t.name in present]


# --- ApplicationSet ----------------------------------------------------------------------


def app_labels(d: Deployment, service: spec.Service) -> dict[str, str]:
    return {
        "app.kubernetes.io/part-of": service.name,
        "app.kubernetes.io/managed-by": emit.GENERATOR,
        **naming.tenant_labels(d),
    }


def extras_include(env: str) -> str:
    """The ``directory.include`` glob of the extras source, in go-template form: the two
    places a (tenant, service)'s extra manifests can be, relative to ``rendered/``. The
    same glob for every element; it matches whichever of the files exist, possibly none
    (an Application with no extra manifests). ``rendered/`` itself always exists, which
    a per-tenant directory would not for a tenant whose services have neither."""
    candidates = (
        job_path(env, "{{.tenant}}", "{{.service}}"),
        rollout_path(env, "{{.tenant}}", "{{.service}}"),
        slo_rules_path(env, "{{.tenant}}", "{{.service}}"),
        dashboard_path(env, "{{.tenant}}", "{{.service}}"),
        probe_path(env, "{{.tenant}}", "{{.service}}"),
        flags_path(env, "{{.tenant}}", "{{.service}}"),
        scaling_path(env, "{{.tenant}}", "{{.service}}"),
    )
    return "{" + ",".join(p.removeprefix("rendered/") for p in candidates) + "}"


def element(model: Model, d: Deployment, service: spec.Service) -> dict[str, str]:
    chart = model.platform.charts[service.chart]
    return {
        "name": naming.application_name(d.env, d.name, service.name),
        "tenant": d.name,
        "service": service.name,
        "tier": d.tier.name,
        "wave": wave(d),
        "project": naming.argocd_project(d.name, d.env),
        "namespace": d.namespace,
        "chartRepo": chart.repository,
        "chart": chart.name,
        "chartVersion": chart.version,
    }


def sync_policy(env: spec.Environment) -> dict[str, Any]:
    policy: dict[str, Any] = {}
    if env.sync.automated:
        policy["automated"] = {"prune": env.sync.prune, "selfHeal": env.sync.self_heal}
    # The namespace comes from the platform Application; never let a tenant app create one.
    policy["syncOptions"] = ["CreateNamespace=false", "PruneLast=true"]
    policy["retry"] = {"limit": 5, "backoff": {"duration": "30s", "factor": 2, "maxDuration": "10m"}}
    return policy


def applicationset(model: Model, env: spec.Environment, cell: str) -> dict[str, Any]:
    """The cell's ApplicationSet: a git files generator over the cell's per-tenant JSON
    files (``cells/<cell>/<tenant>.json``), so adding or editing a tenant adds or changes
    that tenant's file only and the ApplicationSet object stays small at any fleet size."""
    repo = model.platform.repository
    steps = []
    for name in all_waves(model):
        step: dict[str, Any] = {"matchExpressions": [{"key": "companyos.io/wave", "operator": "In", "values": [name]}]}
        if name == CANARY_WAVE:
            step["maxUpdate"] = model.platform.tenant_canary_wave_size
        steps.append(step)
    helm_values = values_path(env.name, "{{.tenant}}", "{{.service}}")
    return {
        "apiVersion": API,
        "kind": "ApplicationSet",
        "metadata": {
            "name": applicationset_name(env, cell),
            "namespace": model.platform.argocd_namespace,
            "labels": {**naming.environment_labels(env.name), "companyos.io/cell": cell},
        },
        "spec": {
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [
                {"git": {"repoURL": repo.url, "revision": repo.revision, "files": [{"path": f"{cell_dir(env.name, cell)}/*.json"}]}}
            ],
            "strategy": {"type": "RollingSync", "rollingSync": {"steps": steps}},
            "syncPolicy": {"preserveResourcesOnDeletion": False},
            "template": {
                "metadata": {
                    "name": "{{.name}}",
                    "labels": {
                        "app.kubernetes.io/part-of": "{{.service}}",
                        "app.kubernetes.io/managed-by": emit.GENERATOR,
                        "companyos.io/tenant": "{{.tenant}}",
                        "companyos.io/tier": "{{.tier}}",
                        "companyos.io/wave": "{{.wave}}",
                        "companyos.io/environment": env.name,
                    },
                    "finalizers": ["resources-finalizer.argocd.argoproj.io"],
                },
                "spec": {
                    "project": "{{.project}}",
                    "destination": {"name": networks.cell_cluster(model.platform, env, cell), "namespace": "{{.namespace}}"},
                    "sources": [
                        {
                            "repoURL": "{{.chartRepo}}",
                            "chart": "{{.chart}}",
                            "targetRevision": "{{.chartVersion}}",
                            "helm": {"releaseName": "{{.service}}", "valueFiles": [f"$values/{helm_values}"]},
                        },
                        {"repoURL": repo.url, "targetRevision": repo.revision, "ref": "values"},
                        {
                            "repoURL": repo.url,
                            "targetRevision": repo.revision,
                            "path": "rendered",
                            "directory": {"recurse": True, "include": extras_include(env.name)},
                        },
                    ],
                    "syncPolicy": sync_policy(env),
                },
            },
        },
    }


# --- AppProjects -------------------------------------------------------------------------


def sync_windows(env: spec.Environment) -> list[dict[str, Any]]:
    """With an allow window, Argo CD refuses syncs outside it (automated and manual);
    ``manualSync`` lets an operator sync by hand anyway -- the emergency rollback path."""
    window = env.change_window
    if window is None:
        return []
    return [
        {
            "kind": "allow",
            "schedule": window.schedule,
            "duration": window.duration,
            "timeZone": window.timezone,
            "applications": ["*"],
            "manualSync": True,
        }
    ]


def _kinds(kinds: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"group": group, "kind": kind} for group, kind in kinds]


def source_repos(model: Model, services: tuple[spec.Service, ...] | list[spec.Service]) -> list[str]:
    charts = sorted({model.platform.charts[s.chart].repository for s in services})
    return [model.platform.repository.url, *charts]


def app_project(model: Model, d: Deployment) -> dict[str, Any]:
    project: dict[str, Any] = {
        "apiVersion": API,
        "kind": "AppProject",
        "metadata": {
            "name": naming.argocd_project(d.name, d.env),
            "namespace": model.platform.argocd_namespace,
            "labels": argocd_namespaces.namespace_labels(d),
            "annotations": PROJECT_FIRST,
        },
        "spec": {
            "description": f"Tenant {d.name} ({d.tier.name}) in {d.env}; owner {d.tenant.owner}",
            "sourceRepos": source_repos(model, d.services),
            "destinations": [
                {"name": tenant_cluster(model, d), "namespace": d.namespace},
                *argocd_standby.destinations(model, d.environment, d.namespace),
            ],
            "clusterResourceWhitelist": [],
            "namespaceResourceWhitelist": _kinds(TENANT_KINDS),
            "orphanedResources": {"warn": True},
            "roles": [argocd_rbac.project_role(model, d)],
        },
    }
    windows = sync_windows(d.environment)
    if windows:
        project["spec"]["syncWindows"] = windows
    return project


def ingress_groups(model: Model, d: Deployment) -> tuple[Contract, ...]:
    """The Ingress group these Applications put on the cell's cluster (the public services'
    Ingresses share it: ``targets/helm.py``); the tenant root's ALB alarms find its ALB by it."""
    public = [s for s in d.services if d.public_ingress(s)]
    if not public:
        return ()
    group = naming.ingress_group(model.platform, d.env, d.name)
    at = contract_at(model, "service", public[0].name, "ingress")
    return (Contract("ingress_group", ingress_group_key(tenant_cluster(model, d), group), d.env, at=at),)


def tenant_cluster(model: Model, d: Deployment) -> str:
    """The cluster of the cell the tenant is assigned to in ``d.env``."""
    env = d.environment
    return networks.cell_cluster(model.platform, env, networks.tenant_cell(model.catalog, env.name, d.name))


def platform_documents(model: Model, env: spec.Environment) -> list[dict[str, Any]]:
    """The platform AppProject: it may create tenant namespaces (``tenant-*``, a reserved
    prefix) on every cell's cluster. A pattern, not a list, so it is the same for any fleet."""
    repo = model.platform.repository
    return [
        {
            "apiVersion": API,
            "kind": "AppProject",
            "metadata": {
                "name": naming.platform_project(model.platform, env.name),
                "namespace": model.platform.argocd_namespace,
                "labels": naming.environment_labels(env.name),
                "annotations": PROJECT_FIRST,
            },
            "spec": {
                "description": f"Platform-owned tenant namespaces in {env.name}",
                "sourceRepos": [repo.url],
                "destinations": [
                    *(
                        {"name": networks.cell_cluster(model.platform, env, c.name), "namespace": naming.namespace("*")}
                        for c in networks.cells(env)
                    ),
                    *argocd_standby.destinations(model, env, naming.namespace("*")),
                    # The pools' bootstrap Jobs (targets/pool_bootstrap.py), on the first cell's cluster.
                    {
                        "name": networks.cell_cluster(model.platform, env, networks.cells(env)[0].name),
                        "namespace": naming.pools_namespace(model.platform),
                    },
                ],
                "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
                "namespaceResourceWhitelist": _kinds(PLATFORM_NAMESPACED_KINDS + POOL_BOOTSTRAP_KINDS),
            },
        }
    ]


def namespace_application(model: Model, env: spec.Environment, d: Deployment) -> dict[str, Any]:
    """The platform Application that creates the tenant's namespace and its fence, on the
    cluster of the tenant's cell (its own file: ``tenants/<tenant>.yaml``)."""
    repo = model.platform.repository
    return {
        "apiVersion": API,
        "kind": "Application",
        "metadata": {
            "name": naming.namespace_application(env.name, d.name),
            "namespace": model.platform.argocd_namespace,
            "labels": {**naming.environment_labels(env.name), "companyos.io/tenant": d.name},
        },
        "spec": {
            "project": naming.platform_project(model.platform, env.name),
            "destination": {"name": tenant_cluster(model, d), "namespace": d.namespace},
            "source": {
                "repoURL": repo.url,
                "targetRevision": repo.revision,
                "path": f"{argocd_dir(env.name)}/namespaces",
                "directory": {"include": f"{d.name}.yaml"},
            },
            # Always automated: the fence must exist before (and whatever) the tenant syncs.
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["PruneLast=true"]},
        },
    }


#: argocd-cm key of the health check for Application objects (Argo CD 1.8 dropped it from
#: the defaults; without it an Application is "healthy" as soon as it exists).
APPLICATION_HEALTH_KEY = "resource.customizations.health.argoproj.io_Application"
#: The check Argo CD's documentation gives (operator-manual/health.md, "Argo CD App"): an
#: Application is as healthy as its own status says, Progressing until it has one.
APPLICATION_HEALTH_LUA = """hs = {}
hs.status = "Progressing"
hs.message = ""
if obj.status ~= nil then
  if obj.status.health ~= nil then
    hs.status = obj.status.health.status
    if obj.status.health.message ~= nil then
      hs.message = obj.status.health.message
    end
  end
end
return hs
"""


def controller_roles(model: Model, env: spec.Environment) -> tuple[Contract, ...]:
    """With a standby or several cells: the IRSA role the controller's service account is
    annotated with, which the shared root (dr.tf, else cells.tf) must render trusting exactly
    that service account."""
    if not argocd_clusters.registers(env):
        return ()
    role = argocd_controller_role_arn(model.platform, env)
    subject = f"{model.platform.argocd_namespace}:{ARGOCD_CONTROLLER_SA}"
    key = "disaster_recovery" if env.disaster_recovery is not None else "cells"
    return (Contract("iam_role", role, env.name, detail=subject, at=contract_at(model, "environment", env.name, key)),)


def controller_values(env: spec.Environment, platform: spec.Platform) -> dict[str, Any]:
    """Helm values of the argo-cd chart for the environment's Argo CD: one application
    controller replica (shard) per cell, clusters spread round-robin over them; and the
    Application health check that makes the root Application's sync waves wait for each
    add-on Application to be Healthy before the next wave (tenant ApplicationSets and
    namespaces sync at wave 0 and later, after every add-on: docs/delivery.md)."""
    controller: dict[str, Any] = {"replicas": len(networks.cells(env))}
    if argocd_clusters.registers(env):
        # IRSA: reads the connections of the standby and the other cells' clusters and is
        # admitted on each (shared root: dr.tf, cells.tf)
        controller["serviceAccount"] = {"annotations": {"eks.amazonaws.com/role-arn": argocd_controller_role_arn(platform, env)}}
    return {
        "controller": controller,
        "configs": {
            "params": {"controller.sharding.algorithm": SHARDING_ALGORITHM},
            "cm": {APPLICATION_HEALTH_KEY: APPLICATION_HEALTH_LUA},
        },
    }


# --- bootstrap -----------------------------------------------------------------------------


def bootstrap_documents(model: Model, env: spec.Environment) -> list[dict[str, Any]]:
    """The app-of-apps root: an AppProject that may only manage Argo CD's own objects in
    Argo CD's namespace, and the Application that syncs this environment's files."""
    repo = model.platform.repository
    name = naming.gitops_project(model.platform, env.name)
    labels = naming.environment_labels(env.name)
    argo_ns = model.platform.argocd_namespace
    return [
        {
            "apiVersion": API,
            "kind": "AppProject",
            "metadata": {"name": name, "namespace": argo_ns, "labels": labels},
            "spec": {
                "description": f"Argo CD's own configuration for {env.name}: AppProjects, ApplicationSets, Applications",
                "sourceRepos": [repo.url],
                "destinations": [{"name": IN_CLUSTER, "namespace": argo_ns}],
                "clusterResourceWhitelist": [],
                "namespaceResourceWhitelist": [
                    *({"group": "argoproj.io", "kind": k} for k in ("AppProject", "Application", "ApplicationSet")),
                    *(_kinds(argocd_clusters.REGISTRATION_KINDS) if argocd_clusters.registers(env) else []),
                ],
            },
        },
        {
            "apiVersion": API,
            "kind": "Application",
            "metadata": {"name": name, "namespace": argo_ns, "labels": labels},
            "spec": {
                "project": name,
                "destination": {"name": IN_CLUSTER, "namespace": argo_ns},
                "source": {
                    "repoURL": repo.url,
                    "targetRevision": repo.revision,
                    "path": argocd_dir(env.name),
                    "directory": {
                        "recurse": True,
                        "include": "{bootstrap.yaml,platform.yaml,applicationsets.yaml,addons.yaml,capacity.yaml,projects/*.yaml,tenants/*.yaml,pool-applications/*.yaml,standby/*.yaml"
                        # the other cells' registrations (clusters.py), where there are any
                        + (",clusters/*.yaml" if argocd_clusters.extra_cells(env) else "")
                        + "}",
                    },
                },
                # Prune stays off: deleting an AppProject or ApplicationSet by accident would
                # cascade to every tenant's workloads. Server-side apply: no last-applied
                # annotation to outgrow (256 KiB), whatever an object grows to.
                "syncPolicy": {"automated": {"prune": False, "selfHeal": True}, "syncOptions": ["ServerSideApply=true"]},
            },
        },
    ]
