"""Every derived name in one place, so targets that must agree (the IRSA role Terraform
creates and the Helm values that annotate it; the namespace Argo CD deploys to and the
AppProject that fences it) cannot drift apart."""

from __future__ import annotations

from generator import spec

#: Kubernetes object names (DNS-1123 labels) and many AWS ids stop at 63 characters.
MAX_LABEL = 63


def namespace(tenant: str) -> str:
    """The tenant's namespace; prefixed so no tenant can claim kube-system or argocd."""
    return f"tenant-{tenant}"


def cluster_name(platform: spec.Platform, env: str) -> str:
    """The environment's shared EKS cluster, which runs every tenant's workloads."""
    return f"{platform.organization}-{env}"


def resource_prefix(platform: spec.Platform, env: str, tenant: str) -> str:
    return f"{platform.organization}-{env}-{tenant}"


def irsa_role_name(platform: spec.Platform, env: str, tenant: str, service: str) -> str:
    return f"{resource_prefix(platform, env, tenant)}-{service}"


def irsa_role_arn(account_id: str, platform: spec.Platform, env: str, tenant: str, service: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{irsa_role_name(platform, env, tenant, service)}"


def hostname(service: str, tenant: str, env: spec.Environment) -> str:
    return f"{service}.{tenant}.{env.domain}"


def secret_key(template: str, tenant: str, env: str) -> str:
    """A Secrets Manager name from a service's SecretRef key template."""
    return template.replace("{tenant}", tenant).replace("{env}", env)


def db_secret_key(platform: spec.Platform, env: str, tenant: str, service: str) -> str:
    """Where the tenant's database credentials for ``service`` live in Secrets Manager."""
    return f"{platform.organization}/{env}/{tenant}/{service}/database"


def account_role_arn(account_id: str, platform: spec.Platform) -> str:
    """The role Terraform and CI assume in an account."""
    return f"arn:aws:iam::{account_id}:role/{platform.organization}-terraform"
