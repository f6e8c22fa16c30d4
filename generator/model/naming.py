"""Every derived name in one place, so targets that must agree (the IRSA role Terraform
creates and the Helm values that annotate it; the namespace Argo CD deploys to and the
AppProject that fences it) cannot drift apart."""

from __future__ import annotations

from typing import TYPE_CHECKING

from generator.catalog import spec
from generator.formats import emit

if TYPE_CHECKING:
    from generator.model.resolve import Deployment

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


def ci_role_arn(account_id: str, platform: spec.Platform, purpose: str) -> str:
    """A narrow role GitHub Actions assumes by OIDC for one job kind (``deploy``,
    ``ecr-read``, ``restore-drill``), so a deploy can never run Terraform."""
    return f"arn:aws:iam::{account_id}:role/{platform.organization}-ci-{purpose}"


def preview_namespace(pr_number: str) -> str:
    """The ephemeral namespace of a pull request's preview in dev (``pr-<number>``)."""
    return f"pr-{pr_number}"


def terraform_root_dir(env: str, root: str) -> str:
    """``rendered/terraform/<env>/<root>``: the manifest's ``root`` field and CI's working dir."""
    return f"rendered/terraform/{env}/{root}"


def workflow_path(name: str) -> str:
    return f".github/workflows/{name}.yml"


# --- Kubernetes labels ---------------------------------------------------------------------


def tenant_labels(d: Deployment) -> dict[str, str]:
    """Who a tenant's object belongs to: tenant, tier and environment (in this order)."""
    return {
        "companyos.io/tenant": d.name,
        "companyos.io/tier": d.tier.name,
        "companyos.io/environment": d.env,
    }


def environment_labels(env: str) -> dict[str, str]:
    """Labels of an object the generator manages for a whole environment."""
    return {"app.kubernetes.io/managed-by": emit.GENERATOR, "companyos.io/environment": env}


# --- Argo CD delivery (targets/argocd.py, targets/migrations.py) ---------------------


def argocd_project(tenant: str, env: str) -> str:
    """The tenant's AppProject in one environment (one Argo CD may serve every environment)."""
    return f"{tenant}-{env}"


def platform_project(platform: spec.Platform, env: str) -> str:
    """The platform team's AppProject: the only one allowed to create Namespaces."""
    return f"{platform.organization}-platform-{env}"


def applicationset_name(env: str) -> str:
    return f"{env}-services"


def application_name(env: str, tenant: str, service: str) -> str:
    """What the ApplicationSet names each generated Application (Argo CD's go template
    builds the same string from the element's labels)."""
    return f"{env}-{tenant}-{service}"


def workload_name(service: str) -> str:
    """The Deployment stakater's chart renders: ``applicationName``, which the Helm values
    set to the service name. The Rollout's ``workloadRef`` points at it."""
    return service


def migration_job_name(service: str) -> str:
    return f"{service}-migrate"


def migration_secret_name(service: str) -> str:
    """The Secret the migration Job's own ExternalSecret fills (the chart's one is created
    only in the Sync phase, after PreSync hooks ran)."""
    return f"{service}-migrate-db"


def analysis_template_name(service: str) -> str:
    return f"{service}-success-rate"


# --- Terraform roots and the AWS resources they name ---------------------------------------

#: The control-plane root of an environment (shared-services account).
SHARED_ROOT = "shared"


def pool_root(tier: str) -> str:
    """The root of a pooled tier's data plane in one environment (``pool-<tier>``)."""
    return f"pool-{tier}"


def tenant_root(tenant: str) -> str:
    """A tenant's own root (``tenant-<name>``)."""
    return f"tenant-{tenant}"


def terraform_state_key(env: str, root: str) -> str:
    return f"{env}/{root}/terraform.tfstate"


def bucket_name(platform: spec.Platform, env: str, owner: str) -> str:
    """S3 bucket of a tenant or pool (``owner`` is the tenant name or ``pool-<tier>``)."""
    return f"{resource_prefix(platform, env, owner)}-data"


def tenant_s3_prefix(tenant: str) -> str:
    """A pooled tenant's prefix in its pool's bucket; its IAM policy stops there."""
    return f"tenants/{tenant}/"


def kms_alias(platform: spec.Platform, env: str, owner: str) -> str:
    """KMS alias without the ``alias/`` prefix (the kms module adds it)."""
    return f"{platform.organization}/{env}/{owner}"


def cache_id(env: str, owner: str) -> str:
    """ElastiCache replication group id (at most 40 characters)."""
    return f"{owner}-{env}"[:40].rstrip("-")


def log_group(platform: spec.Platform, env: str, owner: str) -> str:
    return f"/{platform.organization}/{env}/{owner}"


def ingress_origin_hostname(tenant: str, env: spec.Environment) -> str:
    """The record external-dns keeps pointing at the tenant's ALB; CloudFront's origin."""
    return f"origin.{tenant}.{env.domain}"


def gitops_project(platform: spec.Platform, env: str) -> str:
    """The AppProject of the root Application that applies rendered/argocd/<env>/."""
    return f"{platform.organization}-gitops-{env}"
