"""What more than one target needs: workload hardening, output paths, the canary rule.

Targets never import each other; whatever two of them must agree on lives here. The
security settings every workload gets (tenant and preview Helm values, migration Jobs) are
written once, so no template can drift (a missing ``seccompProfile`` in one is exactly what
checkov and a reviewer miss). Functions, not constants: each caller gets its own dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generator.catalog.spec import Service
from generator.model import addons as model_addons
from generator.model import naming
from generator.model.resolve import Deployment, Model

#: The unprivileged user and group every container runs as (images are built for it).
RUN_AS = 10001


def pod_security_context() -> dict[str, Any]:
    """Pod level: non-root with a fixed uid/gid, volumes group-owned, default seccomp."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """Container level, as the stakater chart's ``containerSecurityContext`` takes it:
    read-only root, no privilege escalation, every capability dropped."""
    return {
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }


def values_path(env: str, tenant: str, service: str) -> str:
    """Where the Helm values of one tenant's service live (Argo CD reads them from here)."""
    return f"rendered/helm/{env}/{tenant}/{service}.yaml"


def job_path(env: str, tenant: str, service: str) -> str:
    """Where one tenant's migration Job lives (Argo CD syncs it as a PreSync hook)."""
    return f"rendered/migrations/{env}/{tenant}/{service}.yaml"


def slo_rules_path(env: str, tenant: str, service: str) -> str:
    """Where one tenant's SLO PrometheusRule for a service lives (the service's Application
    syncs it with the Rollout and the migration Job: the extras source)."""
    return f"rendered/argocd/{env}/observability/{tenant}/{service}.yaml"


def canary_enabled(d: Deployment, service: Service) -> bool:
    """A canary needs all three: the environment does progressive delivery, the service
    declares canary steps, and no layer switched it off for this tenant."""
    return bool(d.environment.progressive_delivery and service.canary is not None and d.settings.services[service.name].canary.enabled)


# --- cross-account secret reads (helm, migrations, argocd namespaces, terraform) -------------

#: The CRD kind whose add-on (External Secrets Operator) reads the secrets: its IRSA role in
#: the shared-services account is the only principal the tenants' reader roles trust.
SECRET_STORE_KIND = "external-secrets.io/SecretStore"


@dataclass(frozen=True)
class SecretReader:
    """How one tenant's ExternalSecrets reach its secrets in another account: the namespaced
    SecretStore ``store`` (controller credentials, i.e. ESO's IRSA role ``principal``) assumes
    ``role_arn`` in ``account`` (where Terraform creates the secrets) with ``external_id`` and
    the session tag ``esoNamespace=<namespace>``; the role reads only ``secret_arns``."""

    store: str
    namespace: str
    region: str
    account: str
    role_name: str
    role_arn: str
    principal: str
    external_id: str
    prefix: str

    @property
    def secret_arns(self) -> str:
        return f"arn:aws:secretsmanager:{self.region}:{self.account}:secret:{self.prefix}*"

    @property
    def trust_detail(self) -> str:
        return reader_trust_detail(self.principal, self.namespace, [self.secret_arns])

    @property
    def assume_detail(self) -> str:
        return reader_assume_detail(self.principal)

    @property
    def secret_detail(self) -> str:
        return secret_access_detail(self.account, self.role_arn)


def reader_trust_detail(principal: str, namespace: str, readable: list[str]) -> str:
    """What an ``iam_role`` contract of a reader role says: who it trusts, for which
    namespace, and what it may read (the contract check compares both sides' strings)."""
    return f"trusts {principal} for {namespace}, reads {', '.join(sorted(readable))}"


def reader_assume_detail(principal: str) -> str:
    return f"assumable by {principal}"


def secret_access_detail(account: str, role_arn: str) -> str:
    """What a ``secret`` contract says: the account it is in and the reader role covering it."""
    return f"account {account}, read by {role_arn}"


def reads_secrets(d: Deployment) -> bool:
    """The tenant has at least one ExternalSecret (an app secret, a database or a cache)."""
    return any(s.secrets or s.uses_database or s.uses_cache for s in d.services)


def secret_reader(model: Model, d: Deployment) -> SecretReader | None:
    """The tenant's reader, or None when it reads no secrets or no add-on in its environment
    provides the SecretStore kind (then the contract check reports the missing store)."""
    if not reads_secrets(d):
        return None
    eso = next(
        (a for a in model_addons.in_environment(model.catalog, d.env) if SECRET_STORE_KIND in a.provides_crds and a.service_account),
        None,
    )
    if eso is None:
        return None
    platform = model.platform
    return SecretReader(
        store=platform.secret_store,
        namespace=d.namespace,
        region=d.environment.aws.region,
        account=d.account_id,
        role_name=naming.secret_reader_role_name(platform, d.env, d.name),
        role_arn=naming.secret_reader_role_arn(d.account_id, platform, d.env, d.name),
        principal=model_addons.role_arn(d.environment.accounts.shared_services, platform, d.env, eso.name),
        external_id=naming.secret_reader_external_id(platform, d.env, d.name),
        prefix=naming.secret_prefix(platform, d.env, d.name),
    )
