"""The standby cluster in Argo CD (issue 15): ``rendered/argocd/<env>/standby/*.yaml``.

Where ``disaster_recovery`` is declared: the DR cluster's registration (an ExternalSecret
materializing Argo CD's cluster Secret from the connection the shared Terraform root stores),
the tenant namespaces on it, and one ApplicationSet over the same per-tenant files as the
primary's, so every Application exists there too. A values file per tenant layered last
(``rendered/helm/<env>/standby/<tenant>.yaml``) holds its Applications at zero replicas until
the tenant is failed over: ``disaster_recovery.active`` (every tenant) or the tenant listed in
``disaster_recovery.active_tenants`` (one dedicated tenant). The failover workflow commits that
and the render that follows is what scales them up (a commit, not a click). One file per tenant:
onboarding adds a file and changes none. docs/resilience.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator.catalog import spec
from generator.formats import emit
from generator.formats.templating import Templates
from generator.model import naming
from generator.model.resolve import Model
from generator.targets import common
from generator.targets.argocd import clusters
from generator.targets.base import RenderedFile
from generator.targets.common import values_path
from generator.targets.contracts import Contract, deployed_kinds
from generator.targets.contracts import at as contract_at

API = "argoproj.io/v1alpha1"
T_STANDBY = "argocd/standby.yaml.j2"
T_SCALE = "helm/standby-values.yaml.j2"


def enabled(env: spec.Environment) -> bool:
    return env.disaster_recovery is not None


def active(env: spec.Environment) -> bool:
    """True once the failover workflow has committed ``disaster_recovery.active: true``."""
    return env.disaster_recovery is not None and env.disaster_recovery.active


def active_tenants(env: spec.Environment) -> list[str]:
    """The tenants failed over on their own (``disaster_recovery.active_tenants``), sorted."""
    return sorted(env.disaster_recovery.active_tenants) if env.disaster_recovery is not None else []


def standby_dir(env: str) -> str:
    return f"rendered/argocd/{env}/standby"


def scale_values_path(env: str, tenant: str) -> str:
    """The Helm values layered after the tenant's own on the standby cluster (``tenant`` may be
    the ApplicationSet's ``{{.tenant}}``)."""
    return f"rendered/helm/{env}/standby/{tenant}.yaml"


#: The extras include of a standby Application whose tenant still stands by: a path no rendered
#: file has, so the source yields no manifest (as for a tenant with no extras at all).
NO_EXTRAS = "standby-not-failed-over"


def destinations(model: Model, env: spec.Environment, namespace: str) -> list[dict[str, str]]:
    """The extra AppProject destination a tenant (or the platform) needs on the DR cluster."""
    if not enabled(env):
        return []
    return [{"name": common.standby_cluster(model.platform, env.name), "namespace": namespace}]


def scale_values(env: spec.Environment, tenant: str) -> dict[str, Any]:
    """Helm values that override the tenant's replica counts while it stands by; none once
    failed over (its own values apply, as in the primary)."""
    if common.failed_over(env, tenant):
        return {}
    return {"deployment": {"replicas": 0}, "autoscaling": {"enabled": False}, "pdb": {"enabled": False}}


def registration(model: Model, env: spec.Environment) -> list[dict[str, Any]]:
    """The DR cluster's Argo CD cluster Secret, built by External Secrets from the connection
    the shared Terraform root stores (endpoint and CA are only known after apply)."""
    platform = model.platform
    return clusters.registration(
        platform, env, common.standby_cluster(platform, env.name), common.argocd_standby_secret(platform, env.name)
    )


def namespaces_application(model: Model, env: spec.Environment) -> dict[str, Any]:
    """Every tenant namespace and its fence on the DR cluster: the whole ``namespaces/``
    folder (a folder, not a list, so onboarding a tenant does not change it)."""
    repo = model.platform.repository
    return {
        "apiVersion": API,
        "kind": "Application",
        "metadata": {
            "name": naming.standby_namespace_application(env.name),
            "namespace": model.platform.argocd_namespace,
            "labels": {**naming.environment_labels(env.name), "companyos.io/standby": "true"},
        },
        "spec": {
            "project": naming.platform_project(model.platform, env.name),
            "destination": {"name": common.standby_cluster(model.platform, env.name)},
            "source": {
                "repoURL": repo.url,
                "targetRevision": repo.revision,
                "path": f"rendered/argocd/{env.name}/namespaces",
            },
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["PruneLast=true"]},
        },
    }


def applicationset(model: Model, env: spec.Environment, extras: str) -> dict[str, Any]:
    """The environment's Applications on the DR cluster: the same per-tenant files as every
    cell's ApplicationSet (all cells), the same chart and values, then the standby values.
    While standing by, no extra manifests (Rollouts, ScaledObjects would scale from zero);
    once active, the primary's (``extras``: its ``directory.include`` glob); with only some
    tenants failed over, the include is the primary's for them and ``NO_EXTRAS`` for the rest
    (a go-template condition on ``.tenant``: the template lists no tenant otherwise)."""
    repo = model.platform.repository
    cluster = common.standby_cluster(model.platform, env.name)
    sources: list[dict[str, Any]] = [
        {
            "repoURL": "{{.chartRepo}}",
            "chart": "{{.chart}}",
            "targetRevision": "{{.chartVersion}}",
            "helm": {
                "releaseName": "{{.service}}",
                "valueFiles": [
                    f"$values/{values_path(env.name, '{{.tenant}}', '{{.service}}')}",
                    f"$values/{scale_values_path(env.name, '{{.tenant}}')}",
                ],
            },
        },
        {"repoURL": repo.url, "targetRevision": repo.revision, "ref": "values"},
    ]
    include = extras_of_active(env, extras)
    if include is not None:
        sources.append(
            {"repoURL": repo.url, "targetRevision": repo.revision, "path": "rendered", "directory": {"recurse": True, "include": include}}
        )
    policy: dict[str, Any] = {
        "automated": {"prune": True, "selfHeal": True},
        "syncOptions": ["CreateNamespace=false", "PruneLast=true"],
        "retry": {"limit": 5, "backoff": {"duration": "30s", "factor": 2, "maxDuration": "10m"}},
    }
    return {
        "apiVersion": API,
        "kind": "ApplicationSet",
        "metadata": {
            "name": naming.standby_applicationset(env.name),
            "namespace": model.platform.argocd_namespace,
            "labels": {**naming.environment_labels(env.name), "companyos.io/standby": "true"},
        },
        "spec": {
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [
                {"git": {"repoURL": repo.url, "revision": repo.revision, "files": [{"path": f"rendered/argocd/{env.name}/cells/*/*.json"}]}}
            ],
            "syncPolicy": {"preserveResourcesOnDeletion": False},
            "template": {
                "metadata": {
                    "name": naming.standby_application("{{.name}}"),
                    "labels": {
                        "app.kubernetes.io/part-of": "{{.service}}",
                        "app.kubernetes.io/managed-by": emit.GENERATOR,
                        "companyos.io/tenant": "{{.tenant}}",
                        "companyos.io/environment": env.name,
                        "companyos.io/standby": "true",
                    },
                    "finalizers": ["resources-finalizer.argocd.argoproj.io"],
                },
                "spec": {
                    "project": "{{.project}}",
                    "destination": {"name": cluster, "namespace": "{{.namespace}}"},
                    "sources": sources,
                    "syncPolicy": policy,
                },
            },
        },
    }


def extras_of_active(env: spec.Environment, extras: str) -> str | None:
    """The standby extras source's include: none while every tenant stands by, the primary's
    when the environment is active, else a condition naming the tenants failed over alone."""
    if active(env):
        return extras
    names = active_tenants(env)
    if not names:
        return None
    quoted = " ".join(emit.to_json(n) for n in names)
    return f"{{{{if eq .tenant {quoted}}}}}{extras}{{{{else}}}}{NO_EXTRAS}{{{{end}}}}"


def render(model: Model, templates: Templates, env: spec.Environment, extras: str) -> Iterator[RenderedFile]:
    """The standby files of ``env``; nothing when it declares no ``disaster_recovery``."""
    if not enabled(env) or not model.in_environment(env.name):
        return
    sources = (model.source("platform", "platform"), model.source("environment", env.name))
    in_env = contract_at(model, "environment", env.name, "disaster_recovery")
    gitops = naming.gitops_project(model.platform, env.name)
    documents = [*registration(model, env), namespaces_application(model, env), applicationset(model, env, extras)]
    yield RenderedFile(
        path=f"{standby_dir(env.name)}/standby.yaml",
        text=templates.render(
            T_STANDBY,
            env=env,
            cluster=common.standby_cluster(model.platform, env.name),
            active=active(env),
            active_tenants=active_tenants(env),
            documents=documents,
        ),
        sources=(*sources, templates.path(T_STANDBY)),
        environment=env.name,
        provides=(Contract("argocd_cluster", common.standby_cluster(model.platform, env.name), env.name, at=in_env),),
        consumes=(
            *deployed_kinds(documents, gitops, env.name, at=in_env),
            *clusters.destinations_consumed(model, env, documents, in_env),
        ),
    )
    for d in model.rendered_in(env.name):  # an incremental render (output/units.py) names a few
        yield RenderedFile(
            path=scale_values_path(env.name, d.name),
            text=templates.render(
                T_SCALE,
                env=env,
                tenant=d.name,
                active=active(env),
                failed_over=common.failed_over(env, d.name),
                values=scale_values(env, d.name),
            ),
            sources=(*sources, model.source("tenant", d.name), templates.path(T_SCALE)),
            tenant=d.name,
            environment=env.name,
        )
