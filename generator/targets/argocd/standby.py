"""The standby cluster in Argo CD (issue 15): ``rendered/argocd/<env>/standby/*.yaml``.

Where ``disaster_recovery`` is declared: the DR cluster's registration (an ExternalSecret
materializing Argo CD's cluster Secret from the connection the shared Terraform root stores),
the tenant namespaces on it, and one ApplicationSet over the same per-tenant files as the
primary's, so every Application exists there too. A values file layered last
(``rendered/helm/<env>/standby.yaml``) holds them at zero replicas until
``disaster_recovery.active`` is true: the failover workflow commits that flag and the render
that follows is what scales them up (a commit, not a click). docs/resilience.md.
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
#: The kinds the gitops AppProject must also whitelist for the registration.
REGISTRATION_KINDS = clusters.REGISTRATION_KINDS


def enabled(env: spec.Environment) -> bool:
    return env.disaster_recovery is not None


def active(env: spec.Environment) -> bool:
    """True once the failover workflow has committed ``disaster_recovery.active: true``."""
    return env.disaster_recovery is not None and env.disaster_recovery.active


def standby_dir(env: str) -> str:
    return f"rendered/argocd/{env}/standby"


def scale_values_path(env: str) -> str:
    """The Helm values layered after each tenant's own on the standby cluster."""
    return f"rendered/helm/{env}/standby.yaml"


def destinations(model: Model, env: spec.Environment, namespace: str) -> list[dict[str, str]]:
    """The extra AppProject destination a tenant (or the platform) needs on the DR cluster."""
    if not enabled(env):
        return []
    return [{"name": common.standby_cluster(model.platform, env.name), "namespace": namespace}]


def scale_values(env: spec.Environment) -> dict[str, Any]:
    """Helm values that override every tenant's replica counts while standing by; none once
    active (each tenant's own values apply, as in the primary)."""
    if active(env):
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
    once active, the primary's (``extras``: its ``directory.include`` glob)."""
    repo = model.platform.repository
    cluster = common.standby_cluster(model.platform, env.name)
    sources: list[dict[str, Any]] = [
        {
            "repoURL": "{{.chartRepo}}",
            "chart": "{{.chart}}",
            "targetRevision": "{{.chartVersion}}",
            "helm": {
                "releaseName": "{{.service}}",
                "valueFiles": [f"$values/{values_path(env.name, '{{.tenant}}', '{{.service}}')}", f"$values/{scale_values_path(env.name)}"],
            },
        },
        {"repoURL": repo.url, "targetRevision": repo.revision, "ref": "values"},
    ]
    if active(env):
        sources.append(
            {"repoURL": repo.url, "targetRevision": repo.revision, "path": "rendered", "directory": {"recurse": True, "include": extras}}
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
            T_STANDBY, env=env, cluster=common.standby_cluster(model.platform, env.name), active=active(env), documents=documents
        ),
        sources=(*sources, templates.path(T_STANDBY)),
        environment=env.name,
        provides=(Contract("argocd_cluster", common.standby_cluster(model.platform, env.name), env.name, at=in_env),),
        consumes=(
            *deployed_kinds(documents, gitops, env.name, at=in_env),
            *clusters.destinations_consumed(model, env, documents, in_env),
        ),
    )
    yield RenderedFile(
        path=scale_values_path(env.name),
        text=templates.render(T_SCALE, env=env, active=active(env), values=scale_values(env)),
        sources=(*sources, templates.path(T_SCALE)),
        environment=env.name,
    )
