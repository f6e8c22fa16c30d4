"""Migration Jobs: ``rendered/migrations/<env>/<tenant>/<service>.yaml``.

Two Argo CD PreSync hooks per migrating service: an ExternalSecret (wave -2) that fills the
Job's database secret, and a ``batch/v1`` Job (wave -1) whose init containers plan and
dry-run and whose main container applies, to ``MIGRATION_TARGET_VERSION``: the schema
version the catalog declares for this environment. Why hooks, waves and this secret:
docs/delivery.md ("Migrations").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator.catalog.spec import Service
from generator.formats import emit
from generator.formats.templating import Templates
from generator.model import naming
from generator.model.resolve import Deployment, Model
from generator.targets import common as hardening
from generator.targets.base import RenderedFile
from generator.targets.common import job_path
from generator.targets.contracts import Contract, deployed_kinds
from generator.targets.contracts import at as contract_at

NAME = "migrations"
#: Each environment's files depend on that environment's slice of the model only (see parallel.py).
PER_ENVIRONMENT = True
TEMPLATE = "migrations/job.yaml.j2"

#: The Job may retry once (a transient DB failover); a migration is idempotent by policy.
BACKOFF_LIMIT = 1
ACTIVE_DEADLINE_SECONDS = 1800
TTL_SECONDS_AFTER_FINISHED = 86400
EXTERNAL_SECRETS_API = "external-secrets.io/v1"
#: The variable the migration command reads its target schema version from.
TARGET_VERSION_ENV = "MIGRATION_TARGET_VERSION"


def has_job(service: Service) -> bool:
    return service.migrations is not None


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    template_source = templates.path(TEMPLATE)
    for d in model.rendered_deployments:  # an incremental render (output/units.py) names a few
        if d.account_pending:  # a held vended account
            continue
        for service in d.services:
            if not has_job(service):
                continue
            docs = documents(model, d, service)
            yield RenderedFile(
                path=job_path(d.env, d.name, service.name),
                text=templates.render(TEMPLATE, d=d, service=service, documents=docs),
                sources=(*d.sources, model.source("service", service.name), template_source),
                tenant=d.name,
                environment=d.env,
                consumes=consumes(model, d, service, docs),
            )


def consumes(model: Model, d: Deployment, service: Service, docs: list[dict[str, Any]]) -> tuple[Contract, ...]:
    """The namespace's SecretStore (assuming the tenant's reader role) and the database
    secret read through it, the tenant's namespace and the kinds in its AppProject."""
    where = contract_at(model, "service", service.name, "migrations")
    key = naming.db_secret_key(model.platform, d.env, d.name, service.name)
    reader = hardening.secret_reader(model, d)
    ref = docs[0]["spec"]["secretStoreRef"]
    return (
        Contract("secret_store", f"{d.namespace}/{ref['name']}", d.env, detail=reader.role_arn if reader else "", at=where),
        Contract("secret", key, d.env, detail=reader.secret_detail if reader else "", at=where),
        Contract("namespace", d.namespace, d.env, at=where),
        *deployed_kinds(docs, naming.argocd_project(d.name, d.env), d.env, at=where),
    )


def hook_annotations(wave: int) -> dict[str, str]:
    return {
        "argocd.argoproj.io/hook": "PreSync",
        "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
        "argocd.argoproj.io/sync-wave": str(wave),
    }


def labels(d: Deployment, service: Service) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": naming.migration_job_name(service.name),
        "app.kubernetes.io/part-of": service.name,
        "app.kubernetes.io/component": "migration",
        "app.kubernetes.io/managed-by": emit.GENERATOR,
        **naming.tenant_labels(d),
    }


def documents(model: Model, d: Deployment, service: Service) -> list[dict[str, Any]]:
    """The ExternalSecret and the Job, as data (emitted by the one YAML emitter)."""
    migrations = service.migrations
    assert migrations is not None
    secret_name = naming.migration_secret_name(service.name)
    meta_labels = labels(d, service)
    external_secret = {
        "apiVersion": EXTERNAL_SECRETS_API,
        "kind": "ExternalSecret",
        "metadata": {"name": secret_name, "namespace": d.namespace, "labels": meta_labels, "annotations": hook_annotations(-2)},
        "spec": {
            "refreshInterval": "1h",
            # The namespace's own SecretStore (targets/argocd/namespaces.py).
            "secretStoreRef": {"name": model.platform.secret_store, "kind": "SecretStore"},
            "target": {"name": secret_name, "creationPolicy": "Owner"},
            "dataFrom": [{"extract": {"key": naming.db_secret_key(model.platform, d.env, d.name, service.name)}}],
        },
    }
    image = d.image_ref(service.name)
    resources = d.settings.services[service.name].resources.model_dump()
    env = [{"name": "TENANT", "value": d.name}, {"name": "ENVIRONMENT", "value": d.env}]
    target = migrations.versions.get(d.env)
    if target is not None:
        env.append({"name": TARGET_VERSION_ENV, "value": str(target)})

    def container(name: str, args: list[str]) -> dict[str, Any]:
        return {
            "name": name,
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "command": list(migrations.command),
            "args": list(args),
            "env": [dict(var) for var in env],
            "envFrom": [{"secretRef": {"name": secret_name}}],
            "resources": resources,
            "securityContext": {
                "runAsNonRoot": True,
                "readOnlyRootFilesystem": True,
                "allowPrivilegeEscalation": False,
                "privileged": False,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        }

    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": naming.migration_job_name(service.name),
            "namespace": d.namespace,
            "labels": meta_labels,
            "annotations": hook_annotations(-1),
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
                    "initContainers": [container("plan", migrations.plan_args), container("dry-run", migrations.dry_run_args)],
                    "containers": [container("apply", migrations.apply_args)],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }
    return [external_secret, job]
