"""Per pooled tenant, its schema, roles and row-level security in the pool database.

Files: ``rendered/argocd/<env>/pools/<tier>/<tenant>.yaml`` (a ConfigMap with idempotent SQL
and an Argo CD ``Sync`` hook Job running it with ``psql -v ON_ERROR_STOP=1``), one per tenant
so parallel onboardings never touch the same file; and ``rendered/argocd/<env>/pool-applications/
<tier>.yaml``, the platform-project Application syncing a pool's folder into ``<org>-pools``
(created by Argo CD). The Job is a platform principal: its namespace is no tenant's, and the
admin credentials never enter a tenant namespace. Why and what is still missing (the admin
secret's ExternalSecret, the pod security group): docs/isolation.md ("data stores").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator.catalog import spec
from generator.formats import emit
from generator.formats.templating import Templates
from generator.model import naming, networks
from generator.model.resolve import Deployment, Model
from generator.targets import common as hardening
from generator.targets.base import RenderedFile, wanted
from generator.targets.contracts import Contract, deployed_kinds
from generator.targets.contracts import at as contract_at

NAME = "pool_bootstrap"
#: Each environment's files depend on that environment's slice of the model only (see parallel.py).
PER_ENVIRONMENT = True
RELATIVE_COST = 1
API = "argoproj.io/v1alpha1"
T_BOOTSTRAP = "argocd/pool-bootstrap.yaml.j2"
T_SQL = "argocd/pool-bootstrap.sql.j2"
T_APPLICATION = "argocd/pool-application.yaml.j2"
#: The database every pool instance serves (the tenants' database secrets name the same).
DATABASE = "app"
#: The schema of platform-owned tables shared by a pool's tenants, each row tagged ``tenant``.
SHARED_SCHEMA = "shared"
SQL_KEY = "bootstrap.sql"
SQL_DIR = "/bootstrap"
#: A failed bootstrap retries once (a failover mid-run); the SQL is idempotent.
BACKOFF_LIMIT = 1
ACTIVE_DEADLINE_SECONDS = 600
TTL_SECONDS_AFTER_FINISHED = 86400
RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "250m", "memory": "128Mi"}}
#: The pool Applications sync by hand until the admin path is rendered: the Secret's
#: ExternalSecret (a reader role in the pool account) and the SecurityGroupPolicy giving the
#: Jobs the shared root's ``pool_admin`` group (docs/isolation.md, "What is not covered").
HELD = True
#: ConfigMap first, then the hook Job that reads it (both in the Sync phase).
CONFIGMAP_WAVE = "-1"
JOB_WAVE = "0"


def pools_dir(env: str, tier: str) -> str:
    return f"rendered/argocd/{env}/pools/{tier}"


def bootstrap_path(env: str, tier: str, tenant: str) -> str:
    return f"{pools_dir(env, tier)}/{tenant}.yaml"


def application_path(env: str, tier: str) -> str:
    """Outside ``pools/`` so the root Application's ``pool-applications/*.yaml`` can never pick
    up a tenant's bootstrap objects, whatever the glob's separator semantics."""
    return f"rendered/argocd/{env}/pool-applications/{tier}.yaml"


def ident(name: str) -> str:
    """A catalog name as a PostgreSQL identifier (what ``naming.db_username`` does)."""
    return name.replace("-", "_")


def owner_role(tenant: str) -> str:
    """The tenant's NOLOGIN schema owner; ``__`` so no ``<tenant>_<service>`` login can equal it."""
    return f"{ident(tenant)}__owner"


def admin_secret(tier: str) -> str:
    """The Kubernetes Secret (in ``<org>-pools``) with the pool's admin ``PG*`` variables."""
    return f"pool-{tier}-admin"


def job_name(tenant: str) -> str:
    return f"pool-bootstrap-{tenant}"


def image(model: Model, tier: str, env: str) -> str:
    """psql of the official image of the pool's engine version (as the DR integrity recorder)."""
    return f"public.ecr.aws/docker/library/postgres:{model.base_settings(tier, env).database.engine_version}"


def pooled(model: Model, env: str) -> dict[str, list[Deployment]]:
    """tier -> its pooled tenants in ``env``, by name."""
    out: dict[str, list[Deployment]] = {}
    for d in model.in_environment(env):
        if not d.dedicated:
            out.setdefault(d.tier.name, []).append(d)
    return {tier: sorted(ds, key=lambda d: d.name) for tier, ds in sorted(out.items())}


def plan(d: Deployment) -> dict[str, Any]:
    """What the SQL template names: this tenant's schema, owner, logins and policy, nothing else."""
    return {
        "tenant": d.name,
        "tier": d.tier.name,
        "env": d.env,
        "database": DATABASE,
        "schema": ident(d.name),
        "owner": owner_role(d.name),
        "policy": f"tenant_{ident(d.name)}",
        "shared_schema": SHARED_SCHEMA,
        "sql_key": SQL_KEY,
        "logins": [{"service": s.name, "role": naming.db_username(d.name, s.name)} for s in d.services if s.uses_database],
    }


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    for env in model.environments:
        gitops = naming.gitops_project(model.platform, env.name)
        platform_project = naming.platform_project(model.platform, env.name)
        namespace = naming.pools_namespace(model.platform)
        for tier, deployments in pooled(model, env.name).items():
            where = contract_at(model, "tier", tier)
            app = [application(model, env, tier)]
            yield RenderedFile(
                path=application_path(env.name, tier),
                text=templates.render(T_APPLICATION, tier=tier, env=env.name, namespace=namespace, held=HELD, documents=app),
                sources=(
                    model.source("platform", "platform"),
                    model.source("environment", env.name),
                    model.source("tier", tier),
                    templates.path(T_APPLICATION),
                ),
                environment=env.name,
                provides=(Contract("namespace", namespace, env.name, at=where),),
                consumes=tuple(deployed_kinds(app, gitops, env.name, at=where)),
            )
            for d in deployments:
                if not wanted(d.name):  # an incremental render (output/units.py)
                    continue
                t = {**plan(d), "namespace": namespace}
                sql = templates.render(T_SQL, t=t)
                configmap, job = documents(model, d)
                in_tenant = contract_at(model, "tenant", d.name, "name")
                yield RenderedFile(
                    path=bootstrap_path(env.name, tier, d.name),
                    text=templates.render(T_BOOTSTRAP, t=t, sql=sql, configmap=configmap, documents=[job]),
                    sources=(
                        *d.sources,
                        *(model.source("service", s.name) for s in d.services),
                        templates.path(T_SQL),
                        templates.path(T_BOOTSTRAP),
                    ),
                    tenant=d.name,
                    environment=env.name,
                    consumes=(
                        Contract("namespace", namespace, env.name, at=in_tenant),
                        *deployed_kinds([configmap, job], platform_project, env.name, at=in_tenant),
                    ),
                )


def labels(d: Deployment) -> dict[str, str]:
    """Platform labels: the tenant is what the Job works on, not who runs it (no tenant label,
    so no tenant-scoped admission policy, quota or cost view claims it)."""
    return {
        "app.kubernetes.io/name": "pool-bootstrap",
        "app.kubernetes.io/component": "pool-bootstrap",
        "app.kubernetes.io/managed-by": emit.GENERATOR,
        "companyos.io/pool": d.tier.name,
        "companyos.io/pool-tenant": d.name,
        **naming.environment_labels(d.env),
    }


def documents(model: Model, d: Deployment) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ConfigMap (its ``data`` is written by the template as a literal block) and the Job."""
    namespace = naming.pools_namespace(model.platform)
    name = job_name(d.name)
    meta_labels = labels(d)
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": meta_labels,
            "annotations": {"argocd.argoproj.io/sync-wave": CONFIGMAP_WAVE},
        },
    }
    container = {
        "name": "psql",
        "image": image(model, d.tier.name, d.env),
        "imagePullPolicy": "IfNotPresent",
        "command": ["psql"],
        "args": ["-v", "ON_ERROR_STOP=1", "--single-transaction", "--no-psqlrc", "-f", f"{SQL_DIR}/{SQL_KEY}"],
        "env": [
            {"name": "PGDATABASE", "value": DATABASE},
            {"name": "PGSSLMODE", "value": "require"},
            {"name": "PGAPPNAME", "value": name},
            {"name": "HOME", "value": "/tmp"},
        ],
        # PGHOST, PGPORT, PGUSER, PGPASSWORD of the pool's admin (docs/isolation.md).
        "envFrom": [{"secretRef": {"name": admin_secret(d.tier.name)}}],
        "resources": RESOURCES,
        "securityContext": {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "sql", "mountPath": SQL_DIR, "readOnly": True}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": meta_labels,
            "annotations": {
                "argocd.argoproj.io/hook": "Sync",
                "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
                "argocd.argoproj.io/sync-wave": JOB_WAVE,
            },
        },
        "spec": {
            "backoffLimit": BACKOFF_LIMIT,
            "activeDeadlineSeconds": ACTIVE_DEADLINE_SECONDS,
            "ttlSecondsAfterFinished": TTL_SECONDS_AFTER_FINISHED,
            "template": {
                "metadata": {"labels": meta_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": hardening.pod_security_context(),
                    "containers": [container],
                    "volumes": [
                        {"name": "sql", "configMap": {"name": name}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
                    ],
                },
            },
        },
    }
    return configmap, job


def application(model: Model, env: spec.Environment, tier: str) -> dict[str, Any]:
    """The platform Application of one pool: syncs ``pools/<tier>/`` into ``<org>-pools`` on the
    environment's first cell cluster (the one whose VPC the pool databases are peered with)."""
    repo = model.platform.repository
    namespace = naming.pools_namespace(model.platform)
    return {
        "apiVersion": API,
        "kind": "Application",
        "metadata": {
            "name": naming.pool_application(env.name, tier),
            "namespace": model.platform.argocd_namespace,
            "labels": {**naming.environment_labels(env.name), "companyos.io/pool": tier},
        },
        "spec": {
            "project": naming.platform_project(model.platform, env.name),
            "destination": {"name": networks.cell_cluster(model.platform, env, networks.cells(env)[0].name), "namespace": namespace},
            "source": {"repoURL": repo.url, "targetRevision": repo.revision, "path": pools_dir(env.name, tier)},
            # Not automated (HELD): a sync would start Jobs that cannot run until the admin path exists.
            "syncPolicy": {
                **({"automated": {"prune": True, "selfHeal": True}} if not HELD else {}),
                "syncOptions": ["CreateNamespace=true", "PruneLast=true"],
                "managedNamespaceMetadata": {
                    "labels": {
                        "app.kubernetes.io/managed-by": emit.GENERATOR,
                        "pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/audit": "restricted",
                        "pod-security.kubernetes.io/warn": "restricted",
                        **naming.environment_labels(env.name),
                    }
                },
            },
        },
    }
