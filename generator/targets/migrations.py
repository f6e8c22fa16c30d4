"""Migration Jobs: ``rendered/migrations/<env>/<tenant>/<service>.yaml``.

One file per service that declares ``migrations``, holding two Argo CD PreSync hooks that
run before the service's chart is applied in the same sync:

1. an ExternalSecret (sync-wave -2) that fills ``<service>-migrate-db`` from Secrets
   Manager -- the chart's own ExternalSecret is a Sync-phase resource, so on a first
   install it would not exist yet when the PreSync Job starts;
2. a ``batch/v1`` Job (sync-wave -1): init containers run the plan and the dry-run, the
   main container applies. Same image and tag as the service (``Deployment.image_tag``,
   so a rollback pin moves the Job too). Credentials come only from the Secret.

``hook-delete-policy: BeforeHookCreation`` keeps the last run for inspection until the
next sync replaces it; ``ttlSecondsAfterFinished`` cleans up if no sync follows.
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

NAME = "migrations"
#: Each environment's files depend on that environment's slice of the model only (see parallel.py).
PER_ENVIRONMENT = True
TEMPLATE = "migrations/job.yaml.j2"

#: The Job may retry once (a transient DB failover); a migration is idempotent by policy.
BACKOFF_LIMIT = 1
ACTIVE_DEADLINE_SECONDS = 1800
TTL_SECONDS_AFTER_FINISHED = 86400
EXTERNAL_SECRETS_API = "external-secrets.io/v1"


def has_job(service: Service) -> bool:
    return service.migrations is not None


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    template_source = templates.path(TEMPLATE)
    for d in model.deployments:
        for service in d.services:
            if not has_job(service):
                continue
            yield RenderedFile(
                path=job_path(d.env, d.name, service.name),
                text=templates.render(TEMPLATE, d=d, service=service, documents=documents(model, d, service)),
                sources=(*d.sources, model.source("service", service.name), template_source),
                tenant=d.name,
                environment=d.env,
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
            "secretStoreRef": {"name": model.platform.secret_store, "kind": "ClusterSecretStore"},
            "target": {"name": secret_name, "creationPolicy": "Owner"},
            "dataFrom": [{"extract": {"key": naming.db_secret_key(model.platform, d.env, d.name, service.name)}}],
        },
    }
    image = f"{service.image.repository}:{d.image_tag(service.name)}"
    resources = d.settings.services[service.name].resources.model_dump()

    def container(name: str, args: list[str]) -> dict[str, Any]:
        return {
            "name": name,
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "command": list(migrations.command),
            "args": list(args),
            "env": [{"name": "TENANT", "value": d.name}, {"name": "ENVIRONMENT", "value": d.env}],
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
