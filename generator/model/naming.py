"""Every derived name in one place, so targets that must agree (the IRSA role Terraform
creates and the Helm values that annotate it; the namespace Argo CD deploys to and the
AppProject that fences it) cannot drift apart."""

from __future__ import annotations

import re
from typing import Protocol

from generator.catalog import spec
from generator.formats import emit


class Placed(Protocol):
    """What the common labels need of a deployment. ``model.resolve.Deployment`` has it;
    typing against this instead of importing ``Deployment`` keeps naming below resolve."""

    @property
    def name(self) -> str: ...
    @property
    def env(self) -> str: ...
    @property
    def tier(self) -> spec.Tier: ...


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


def ingress_group(platform: spec.Platform, env: str, tenant: str) -> str:
    """The tenant's Ingress group (one ALB for its public services); the load balancer
    controller tags that ALB ``ingress.k8s.aws/stack`` with it."""
    return resource_prefix(platform, env, tenant)


def irsa_role_name(platform: spec.Platform, env: str, tenant: str, service: str) -> str:
    return f"{resource_prefix(platform, env, tenant)}-{service}"


def irsa_role_arn(account_id: str, platform: spec.Platform, env: str, tenant: str, service: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{irsa_role_name(platform, env, tenant, service)}"


def secret_prefix(platform: spec.Platform, env: str, tenant: str) -> str:
    """Every Secrets Manager name of one tenant in one environment starts with this; its
    secret-reader role may read nothing else."""
    return f"{platform.organization}/{env}/{tenant}/"


def secret_reader_role_name(platform: spec.Platform, env: str, tenant: str) -> str:
    """The role, in the account holding the tenant's secrets, that the External Secrets
    Operator assumes to read them (one per tenant, pooled tenants included)."""
    return f"{resource_prefix(platform, env, tenant)}-{SECRET_READER_SUFFIX}"


def secret_reader_role_arn(account_id: str, platform: spec.Platform, env: str, tenant: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{secret_reader_role_name(platform, env, tenant)}"


def secret_reader_external_id(platform: spec.Platform, env: str, tenant: str) -> str:
    """The ``sts:ExternalId`` the tenant's SecretStore passes and its reader role demands."""
    return resource_prefix(platform, env, tenant)


#: Suffix of the per-tenant secret-reader role (a service may not be named like it).
SECRET_READER_SUFFIX = "secret-reader"
#: The namespaced SecretStore in every tenant namespace that reads secrets (its name is
#: ``platform.secret_store``); the session tag ESO adds naming the ExternalSecret's namespace.
ESO_NAMESPACE_TAG = "esoNamespace"


def hostname(service: str, tenant: str, env: spec.Environment) -> str:
    return f"{service}.{tenant}.{env.domain}"


def secret_key(template: str, tenant: str, env: str) -> str:
    """A Secrets Manager name from a service's SecretRef key template."""
    return template.replace("{tenant}", tenant).replace("{env}", env)


def db_secret_key(platform: spec.Platform, env: str, tenant: str, service: str) -> str:
    """Where the tenant's database credentials for ``service`` live in Secrets Manager."""
    return f"{platform.organization}/{env}/{tenant}/{service}/database"


def cache_secret_key(platform: spec.Platform, env: str, tenant: str) -> str:
    """The Secrets Manager entry Terraform fills with the tenant's Redis endpoint (no password:
    the cache has TLS in transit and sits in a private subnet reached only from the cluster)."""
    return f"{platform.organization}/{env}/{tenant}/cache"


def db_username(tenant: str, service: str) -> str:
    """The PostgreSQL role a tenant's service logs in as (IAM database authentication)."""
    return f"{tenant}_{service}".replace("-", "_")


def db_replica_identifier(platform: spec.Platform, env: str, owner: str, index: int) -> str:
    """RDS identifier of the ``index``-th (1-based) read replica of a tenant's or pool's database."""
    return f"{resource_prefix(platform, env, owner)}-replica-{index}"


def rotation_lambda_arn(region: str, account_id: str, function: str) -> str:
    """The rotation Lambda a service declares, in the account and region of its secret."""
    return f"arn:aws:lambda:{region}:{account_id}:function:{function}"


#: Stands for the id of an account the organization root vends (a dedicated tenant without
#: ``accounts.<env>``): AWS assigns the id at apply, so no catalog file holds it. Terraform
#: roots turn the marker into the org root's output (``targets/terraform/org.py``).
VENDED_ACCOUNT = re.compile(r"<account:([a-z0-9-]+)/([a-z0-9-]+)>")


def vended_account(tenant: str, env: str) -> str:
    return f"<account:{tenant}/{env}>"


def account_role_arn(account_id: str, platform: spec.Platform) -> str:
    """The role Terraform and CI assume in an account."""
    return f"arn:aws:iam::{account_id}:role/{platform.organization}-terraform"


def ci_role_arn(account_id: str, platform: spec.Platform, purpose: str) -> str:
    """A narrow role GitHub Actions assumes by OIDC for one job kind (``deploy``,
    ``ecr-read``, ``restore-drill``), so a deploy can never run Terraform."""
    return f"arn:aws:iam::{account_id}:role/{platform.organization}-ci-{purpose}"


def ecr_repository_name(repository: str) -> str:
    """The ECR repository name of a catalog image repository: its path (``companyos/api``)."""
    return repository.split("/", 1)[1]


def ecr_repository_url(env: spec.Environment, repository: str) -> str:
    """The environment's own copy of an image repository: ECR in its shared-services account
    (the shared root creates it), so each environment pulls from a registry in its region."""
    return f"{env.accounts.shared_services}.dkr.ecr.{env.aws.region}.amazonaws.com/{ecr_repository_name(repository)}"


#: The OIDC issuer of GitHub Actions tokens: what cosign keyless certificates are issued for.
GITHUB_OIDC_ISSUER = "https://token.actions.githubusercontent.com"


def release_workflow_name(service: str) -> str:
    return f"release-{service}"


def release_identity(platform: spec.Platform, service: str) -> str:
    """The certificate identity cosign keyless records for an image the release workflow of
    ``service`` signed on the platform revision: admission and promotion verify exactly this."""
    repo = platform.repository
    return f"https://github.com/{repo.github}/.github/workflows/{release_workflow_name(service)}.yml@refs/heads/{repo.revision}"


def release_identity_pattern(platform: spec.Platform) -> str:
    """A regular expression matching any service's :func:`release_identity`."""
    repo = platform.repository
    return f"^https://github\\.com/{re.escape(repo.github)}/\\.github/workflows/release-[a-z0-9-]+\\.yml@refs/heads/{re.escape(repo.revision)}$"


def preview_namespace(pr_number: str) -> str:
    """The ephemeral namespace of a pull request's preview in dev (``pr-<number>``)."""
    return f"pr-{pr_number}"


def terraform_root_dir(env: str, root: str) -> str:
    """``rendered/terraform/<env>/<root>``: the manifest's ``root`` field and CI's working dir."""
    return f"rendered/terraform/{env}/{root}"


def workflow_path(name: str) -> str:
    return f".github/workflows/{name}.yml"


# --- Kubernetes labels ---------------------------------------------------------------------


def tenant_labels(d: Placed) -> dict[str, str]:
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


def tenant_group(platform: spec.Platform, tenant: str) -> str:
    """The tenant team's group in the identity provider: Argo CD SSO groups, Kubernetes RBAC
    subjects (EKS access entries) and IAM Identity Center all name this one group."""
    return tenant_group_of(platform.organization, tenant)


def tenant_group_of(organization: str, tenant: str) -> str:
    """:func:`tenant_group` from the organization's name alone (the isolation analyzer)."""
    return f"{organization}-tenant-{tenant}"


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


def pools_namespace(platform: spec.Platform) -> str:
    """The platform namespace (one per cluster) whose Jobs bootstrap the pooled tenants in their
    pool databases; named after the organization, which no tenant may be nor start with."""
    return pools_namespace_of(platform.organization)


def pools_namespace_of(organization: str) -> str:
    return f"{organization}-pools"


def pool_admin_group(platform: spec.Platform, env: str) -> str:
    """The shared VPC's security group of the pools' bootstrap Jobs (``pool-`` is a reserved
    tenant prefix, so no tenant's objects can be named like it)."""
    return f"{platform.organization}-{env}-pool-admin"


def pool_admin_secret(tier: str) -> str:
    """The Secret (in ``<org>-pools``) with a pool's admin connection service file, the
    ExternalSecret filling it and the SecretStore it reads through (one name, three kinds)."""
    return f"pool-{tier}-admin"


def pool_endpoint_secret(platform: spec.Platform, env: str, tier: str) -> str:
    """Secrets Manager name of a pool database's coordinates (host, port; no password), in
    the pool account: ``pool-`` is a reserved tenant word, so no tenant prefix covers it."""
    return f"{platform.organization}/{env}/{pool_root(tier)}/admin-endpoint"


def pool_application(env: str, tier: str) -> str:
    """The platform Application syncing a pool's per-tenant bootstrap files in ``env``."""
    return f"{env}-pool-{tier}"


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


def namespace_application(env: str, tenant: str) -> str:
    """The platform's Application that creates a tenant's namespace (platform.yaml of an env)."""
    return f"{env}-namespace-{tenant}"


# --- what the registry of names (model/name_registry.py) needs beyond the functions above ----

#: The owner the shared root names its CloudWatch log group after (``/<org>/<env>/platform``).
PLATFORM_LOG_OWNER = "platform"

#: The purposes of the narrow CI roles (``ci_role_arn``) the workflows assume.
CI_ROLE_PURPOSES = ("deploy", "ecr-read", "ecr-push", "restore-drill", "region-drill", "chaos")

#: Namespaces every cluster has, or the platform installs into, besides Argo CD's,
#: the ingress controller's and Prometheus's (which ``spec.Platform`` names).
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "platform-system")

#: The NetworkPolicies every tenant namespace has (``targets/argocd/namespaces.py``);
#: each service adds ``allow-<workload>``.
NAMESPACE_POLICIES = ("default-deny", "allow-same-namespace", "allow-dns")


def network_policy_name(workload: str) -> str:
    """The NetworkPolicy that lets one workload (a service or its migration Job) talk."""
    return f"allow-{workload}"


#: AWS resources the Terraform templates name ``<resource prefix><suffix>``, by root kind
#: (``terraform/<kind>/main.tf.j2`` and the macros in ``_blocks.tf.j2``). Suffix "" is the
#: prefix itself. tests/hardening/test_names.py checks every suffix in the templates is here.
PREFIX_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "shared": (
        ("AWS Budgets budget", "-monthly"),
        ("Cost Explorer anomaly monitor", "-account"),
        ("SNS topic", "-alerts"),
        ("IAM policy", "-route53-query-logs"),
        ("IAM role", "-fis"),
        ("IAM role", "-region-drill"),
    ),
    "pool": (
        ("RDS instance", ""),
        ("security group", "-db"),
        ("IAM role", "-rds-monitoring"),
        ("SNS topic", "-events"),
        ("AWS Budgets budget", "-monthly"),
        ("Cost Explorer anomaly monitor", "-account"),
        # the role ESO assumes for the bootstrap Jobs' admin Secret (common.PoolReader)
        ("IAM role", f"-{SECRET_READER_SUFFIX}"),
    ),
    "dedicated": (
        ("RDS instance", ""),
        ("security group", "-db"),
        ("IAM role", "-rds-monitoring"),
        ("SQS queue", ""),
        ("SNS topic", "-events"),
        ("AWS Budgets budget", "-monthly"),
        ("Cost Explorer anomaly monitor", "-costs"),
        ("CloudFront cache policy", "-static"),
    ),
    "pooled": (
        ("SQS queue", ""),
        ("AWS Budgets budget", "-monthly"),
        ("Cost Explorer anomaly monitor", "-costs"),
        ("CloudFront cache policy", "-static"),
    ),
    # A data-holding root (pool or dedicated tenant) of an environment with a standby region.
    "dr_data": (
        ("security group", "-db-dr"),
        ("IAM role", "-backup"),
        ("IAM role", "-cache-snapshot"),
        ("EventBridge schedule", "-cache-snapshot"),
        ("ECS cluster", "-integrity"),
        ("security group", "-integrity"),
        ("IAM role", "-integrity-execution"),
        ("ECS task definition family", "-integrity-recorder"),
        ("IAM role", "-integrity-schedule"),
        ("EventBridge schedule", "-integrity-record"),
        ("IAM role", "-s3-replication"),
    ),
}

#: A tenant root with a public service adds CloudFront + a WAF web ACL named after the prefix.
EDGE_NAMES = (("WAF web ACL", ""),)


def reserved_tenant_names(platform: spec.Platform) -> dict[str, str]:
    """Words a tenant name may not be nor start with (``word`` or ``word-...``; a key ending
    in '-' is a plain prefix), each with the platform object it would impersonate."""
    org, env = platform.organization, "<env>"
    reserved = {
        org: f"the platform's own objects are named after the organization ({platform_project(platform, env)}, "
        f"{gitops_project(platform, env)}, {org}-ci-* roles)",
        SHARED_ROOT: f"the shared control plane's Terraform root and KMS alias are named '{SHARED_ROOT}'",
        PLATFORM_LOG_OWNER: f"the control plane's log group is {log_group(platform, env, PLATFORM_LOG_OWNER)}",
        pool_root(""): f"the pooled tiers' roots, KMS aliases, buckets and budgets are named {pool_root('<tier>')}",
        preview_namespace(""): f"preview namespaces are named {preview_namespace('<number>')}",
        "kube-": "Kubernetes reserves kube-* names",
        "argocd": "Argo CD's namespace and objects",
        "standby": "the standby cluster's values of each tenant are rendered/helm/<env>/standby/<tenant>.yaml, "
        "beside the tenants' own rendered/helm/<env>/<tenant>/ folders",
    }
    for ns in (*SYSTEM_NAMESPACES, platform.argocd_namespace, platform.ingress_namespace, platform.monitoring_namespace):
        if reserved_word(ns, reserved) is None:
            reserved[ns] = f"'{ns}' is a namespace the platform uses"
    return reserved


def reserved_word(name: str, reserved: dict[str, str]) -> str | None:
    """The reserved word ``name`` is or starts with (as ``word-``), else None."""
    for word in reserved:
        if name == word.rstrip("-") or name.startswith(word if word.endswith("-") else f"{word}-"):
            return word
    return None


def capacity_project(platform: spec.Platform, env: str) -> str:
    """The AppProject that may manage only Karpenter's cluster-scoped pool objects."""
    return f"{platform.organization}-capacity-{env}"


def capacity_application(env: str) -> str:
    """The Application syncing ``rendered/argocd/<env>/capacity``."""
    return f"{env}-capacity"


def standby_namespace_application(env: str) -> str:
    """The Application of the standby cluster's namespaces (a tenant named 'standby' would clash)."""
    return namespace_application(env, "standby")


def standby_applicationset(env: str) -> str:
    """The ApplicationSet deploying every cell's services to the standby cluster."""
    return f"{applicationset_name(env)}-standby"


def standby_application(application: str) -> str:
    """The standby copy of one service Application (generated by the standby ApplicationSet)."""
    return f"{application}-dr"


def flagd_network_policy_name(workload: str) -> str:
    """The NetworkPolicy letting a workload's flagd sidecar reach the Kubernetes API."""
    return f"{network_policy_name(workload)}-flagd"


def addon_project(platform: spec.Platform, env: str) -> str:
    """The AppProject every platform add-on of ``env`` syncs through."""
    return f"{platform.organization}-addons-{env}"


def addon_application(env: str, addon: str) -> str:
    """One add-on's Argo CD Application in ``env``."""
    return f"{env}-addon-{addon}"
