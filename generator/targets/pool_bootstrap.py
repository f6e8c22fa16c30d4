"""Per pooled tenant, its schema, roles and row-level security in the pool database.

Files: ``rendered/argocd/<env>/pools/<tier>/<tenant>.yaml`` (a ConfigMap with idempotent SQL
and an Argo CD ``Sync`` hook Job running it with ``psql -v ON_ERROR_STOP=1``), one per tenant
so parallel onboardings never touch the same file; and ``rendered/argocd/<env>/pool-applications/
<tier>.yaml``, the platform-project Application syncing a pool's folder into ``<org>-pools``
(created by Argo CD); ``pools/<tier>/pool-admin.yaml`` (``pool-`` is no tenant's name), the
admin path: a SecretStore assuming the pool's reader (common.PoolReader), the ExternalSecret
filling the Jobs' Secret and, once its id is recorded, the SecurityGroupPolicy giving the Jobs
the shared root's ``pool_admin`` group. The Job is a platform principal: its namespace is no
tenant's, and the admin credentials never enter a tenant namespace (docs/isolation.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator.catalog import spec
from generator.formats import emit
from generator.formats.templating import Templates
from generator.model import naming, networks
from generator.model.resolve import Deployment, Model
from generator.targets import common
from generator.targets.base import RenderedFile
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
T_ADMIN = "argocd/pool-admin.yaml.j2"
#: The database every pool instance serves (the tenants' database secrets name the same).
DATABASE = "app"
#: The schema of platform-owned tables shared by a pool's tenants, each row tagged ``tenant``.
SHARED_SCHEMA = "shared"
SQL_KEY = "bootstrap.sql"
SQL_DIR = "/bootstrap"
#: The admin Secret reaches psql as a libpq connection service file, never as environment
#: variables (which leak into /proc, crash dumps and `kubectl describe`).
SERVICE_KEY = "pg_service.conf"
SERVICE_DIR = "/run/pool-admin"
SERVICE_NAME = "pool"
#: A failed bootstrap retries once (a failover mid-run); the SQL is idempotent.
BACKOFF_LIMIT = 1
ACTIVE_DEADLINE_SECONDS = 600
TTL_SECONDS_AFTER_FINISHED = 86400
RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "250m", "memory": "128Mi"}}
#: Hold every pool Application (no automated sync) whatever is recorded; each pool is held on
#: its own while its admin path is incomplete (:func:`held`).
HELD = False
#: The Jobs' security group and the admin Secret's store, then its ExternalSecret (Argo CD waits
#: for it to be Ready), the ConfigMap, and the hook Job reading both (all in the Sync phase).
ADMIN_WAVE = "-3"
EXTERNAL_SECRET_WAVE = "-2"
CONFIGMAP_WAVE = "-1"
JOB_WAVE = "0"
#: The admin path's file in each pool folder (``pool-`` is a reserved tenant word, so no
#: tenant's bootstrap file can be named so).
ADMIN_FILE = "pool-admin.yaml"
EXTERNAL_SECRETS_API = "external-secrets.io/v1"
REFRESH_INTERVAL = "1h"


def pools_dir(env: str, tier: str) -> str:
    return f"rendered/argocd/{env}/pools/{tier}"


def bootstrap_path(env: str, tier: str, tenant: str) -> str:
    return f"{pools_dir(env, tier)}/{tenant}.yaml"


def admin_path(env: str, tier: str) -> str:
    return f"{pools_dir(env, tier)}/{ADMIN_FILE}"


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
    return naming.pool_admin_secret(tier)


def pool_admin_group_id(model: Model, env: str) -> str | None:
    """The ``pool_admin`` group's id as recorded in ``catalog/networks.yaml`` (``companyos
    record-pod-groups``, from the shared root's output), or None before the shared root made it."""
    entry = networks.networks_entry(model.catalog)
    assert entry is not None, "networks.yaml is required and checked at load time"
    block = entry.spec.environments.get(env)
    return None if block is None else block.pool_admin_security_group


def held(model: Model, env: spec.Environment, tier: str) -> str | None:
    """Why the pool's Application may not sync by itself (None: it may): a sync would start
    Jobs that can neither read their Secret nor reach the database."""
    if HELD:
        return "all pool Applications are held (HELD in generator/targets/pool_bootstrap.py)"
    if common.pool_reader(model, env, tier) is None:
        return "no External Secrets add-on in this environment, so no admin Secret"
    if pool_admin_group_id(model, env.name) is None:
        return "pool_admin security group id not recorded: apply the shared root, then run companyos record-pod-groups"
    return None


def job_name(tenant: str) -> str:
    return f"pool-bootstrap-{tenant}"


def image(model: Model, tier: str, env: str) -> str:
    """psql of the pool's engine version by digest (catalog/platform.yaml postgres_client, CO040)."""
    return model.platform.postgres_client.image(model.base_settings(tier, env).database.engine_version)


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
            reason = held(model, env, tier)
            app = [application(model, env, tier, automated=reason is None)]
            yield RenderedFile(
                path=application_path(env.name, tier),
                text=templates.render(T_APPLICATION, tier=tier, env=env.name, namespace=namespace, held=reason, documents=app),
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
            yield from admin_files(model, templates, env, tier)
            for d in deployments:
                if not model.renders(d.name):  # an incremental render (output/units.py)
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
        "imagePullPolicy": "Always",
        "command": ["psql"],
        "args": ["-v", "ON_ERROR_STOP=1", "--single-transaction", "--no-psqlrc", "-f", f"{SQL_DIR}/{SQL_KEY}"],
        "env": [
            {"name": "PGDATABASE", "value": DATABASE},
            {"name": "PGSSLMODE", "value": "require"},
            {"name": "PGAPPNAME", "value": name},
            {"name": "HOME", "value": "/tmp"},
            # host, port, user and password of the pool's admin, read from a file (docs/isolation.md)
            {"name": "PGSERVICEFILE", "value": f"{SERVICE_DIR}/{SERVICE_KEY}"},
            {"name": "PGSERVICE", "value": SERVICE_NAME},
        ],
        "resources": RESOURCES,
        "securityContext": {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "sql", "mountPath": SQL_DIR, "readOnly": True},
            {"name": "admin", "mountPath": SERVICE_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
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
                    "securityContext": common.pod_security_context(),
                    "containers": [container],
                    "volumes": [
                        {"name": "sql", "configMap": {"name": name}},
                        {
                            "name": "admin",
                            "secret": {
                                "secretName": admin_secret(d.tier.name),
                                "items": [{"key": SERVICE_KEY, "path": SERVICE_KEY}],
                                "defaultMode": 0o440,
                            },
                        },
                        {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
                    ],
                },
            },
        },
    }
    return configmap, job


def application(model: Model, env: spec.Environment, tier: str, *, automated: bool = True) -> dict[str, Any]:
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
            # Not automated while held (:func:`held`): its Jobs could not run yet.
            "syncPolicy": {
                **({"automated": {"prune": True, "selfHeal": True}} if automated else {}),
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


# --- the admin path: the Jobs' Secret and security group ---------------------------------------


def admin_files(model: Model, templates: Templates, env: spec.Environment, tier: str) -> Iterator[RenderedFile]:
    """``pools/<tier>/pool-admin.yaml``, synced with the bootstrap files by the pool's
    Application; none without a reader (no External Secrets add-on: the pool stays held)."""
    reader = common.pool_reader(model, env, tier)
    if reader is None:
        return
    group_id = pool_admin_group_id(model, env.name)
    docs = admin_documents(model, env.name, reader, group_id)
    where = contract_at(model, "tier", tier)
    project = naming.platform_project(model.platform, env.name)
    store = f"{reader.namespace}/{reader.store}"
    # the role as rendered: a store assuming anything but the pool's reader breaks a contract
    role = next(str(d["spec"]["provider"]["aws"]["role"]) for d in docs if d["kind"] == "SecretStore")
    yield RenderedFile(
        path=admin_path(env.name, tier),
        text=templates.render(T_ADMIN, tier=tier, env=env.name, reader=reader, sgp=group_id is not None, documents=docs),
        sources=(
            model.source("platform", "platform"),
            model.source("environment", env.name),
            model.source("tier", tier),
            networks.NETWORKS_PATH,
            templates.path(T_ADMIN),
        ),
        environment=env.name,
        provides=(Contract("secret_store", store, env.name, detail=role, at=where),),
        consumes=(
            Contract("namespace", reader.namespace, env.name, at=where),
            *deployed_kinds(docs, project, env.name, at=where),
            # the store's role: trusting ESO for the pools namespace only, reading the pool's two
            # secrets only, and ESO's role allowed to assume it (shared root addons.tf)
            Contract("iam_role", role, env.name, detail=reader.trust_detail, at=where),
            Contract("iam_role", role, env.name, detail=reader.assume_detail, at=where),
            # the ExternalSecret: through that store, the coordinates and the RDS-managed master secret
            Contract("secret_store", store, env.name, detail=reader.role_arn, at=where),
            Contract("secret", reader.prefix, env.name, detail=reader.secret_detail, at=where),
            Contract("secret", reader.master_secret, env.name, detail=reader.secret_detail, at=where),
        ),
    )


def service_file() -> str:
    """The ESO template of the libpq service file (Go template fields, filled by the operator)."""
    return f"[{SERVICE_NAME}]\nhost={{{{ .host }}}}\nport={{{{ .port }}}}\nuser={{{{ .username }}}}\npassword={{{{ .password }}}}\n"


def admin_documents(model: Model, env: str, reader: common.PoolReader, group_id: str | None) -> list[dict[str, Any]]:
    """SecurityGroupPolicy (when ``group_id`` is recorded), SecretStore and ExternalSecret."""
    tier = reader.tier
    name = admin_secret(tier)
    meta_labels = {
        "app.kubernetes.io/name": "pool-admin",
        "app.kubernetes.io/component": "pool-bootstrap",
        "app.kubernetes.io/managed-by": emit.GENERATOR,
        "companyos.io/pool": tier,
    }

    def meta(wave: str, **annotations: str) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": reader.namespace,
            "labels": meta_labels,
            "annotations": {**annotations, "argocd.argoproj.io/sync-wave": wave},
        }

    docs: list[dict[str, Any]] = []
    if group_id is not None:
        docs.append(
            {
                "apiVersion": "vpcresources.k8s.aws/v1beta1",
                "kind": "SecurityGroupPolicy",
                "metadata": meta(ADMIN_WAVE, **{"companyos.io/security-group-name": naming.pool_admin_group(model.platform, env)}),
                # this pool's bootstrap Jobs only (the labels documents() gives their pods)
                "spec": {
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "pool-bootstrap", "companyos.io/pool": tier}},
                    "securityGroups": {"groupIds": [group_id]},
                },
            }
        )
    aws = {
        "service": "SecretsManager",
        "region": reader.region,
        "role": reader.role_arn,
        "externalID": reader.external_id,
        # ESO adds esoNamespace (the ExternalSecret's namespace), which the pool reader's trust demands.
        "sessionTagsPolicy": "Simple",
    }
    store = {"apiVersion": EXTERNAL_SECRETS_API, "kind": "SecretStore", "metadata": meta(ADMIN_WAVE), "spec": {"provider": {"aws": aws}}}
    docs.append(store)
    endpoint = reader.prefix
    docs.append(
        {
            "apiVersion": EXTERNAL_SECRETS_API,
            "kind": "ExternalSecret",
            "metadata": meta(EXTERNAL_SECRET_WAVE),
            "spec": {
                "refreshInterval": REFRESH_INTERVAL,
                "secretStoreRef": {"kind": "SecretStore", "name": reader.store},
                "target": {
                    "name": name,
                    "creationPolicy": "Owner",
                    "template": {
                        "engineVersion": "v2",
                        "type": "Opaque",
                        # one libpq service the Jobs name with PGSERVICE; dbname and sslmode stay theirs
                        "data": {SERVICE_KEY: service_file()},
                    },
                },
                # the pool's coordinates (pool root, aws_secretsmanager_secret.pool_admin_endpoint)
                "data": [
                    {"secretKey": "host", "remoteRef": {"key": endpoint, "property": "host"}},
                    {"secretKey": "port", "remoteRef": {"key": endpoint, "property": "port"}},
                ],
                # the RDS-managed master secret, named by AWS: found by the tag RDS gives it, its
                # JSON (username, password) hoisted to keys
                "dataFrom": [
                    {
                        "find": {"tags": {common.RDS_SECRET_TAG: reader.db_arn}},
                        "rewrite": [{"merge": {"strategy": "Extract", "conflictPolicy": "Error"}}],
                    }
                ],
            },
        }
    )
    return docs
