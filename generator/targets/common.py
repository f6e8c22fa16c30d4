"""What more than one target needs: workload hardening, output paths, the canary rule.

Targets never import each other; whatever two of them must agree on lives here. The
security settings every workload gets (tenant and preview Helm values, migration Jobs) are
written once, so no template can drift (a missing ``seccompProfile`` in one is exactly what
checkov and a reviewer miss). Functions, not constants: each caller gets its own dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator.catalog.spec import Addon, Environment, MetricsEndpoint, Platform, Service
from generator.model import addons as model_addons
from generator.model import naming
from generator.model.resolve import Deployment, Model, promotion_order

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


def dashboard_path(env: str, tenant: str, service: str) -> str:
    """One tenant's Grafana dashboard ConfigMap for a service (synced by the service's Application)."""
    return f"rendered/argocd/{env}/dashboards/{tenant}/{service}.yaml"


def probe_path(env: str, tenant: str, service: str) -> str:
    """One tenant's synthetic Probe of a public service host (synced by the service's Application)."""
    return f"rendered/argocd/{env}/probes/{tenant}/{service}.yaml"


def flag_source_name(service: str) -> str:
    """The FeatureFlag and FeatureFlagSource of a service in its tenant's namespace (the pod annotation names it)."""
    return f"flags-{service}"


def flags_path(env: str, tenant: str, service: str) -> str:
    """One tenant's FeatureFlag and FeatureFlagSource of a service (synced by the service's Application)."""
    return f"rendered/argocd/{env}/flags/{tenant}/{service}.yaml"


def scraped(d: Deployment, service: Service) -> MetricsEndpoint | None:
    """The endpoint Prometheus scrapes: with an SLO or a declared ``metrics`` endpoint, when the
    service has a port at all (the chart renders no Service without ports)."""
    if service.metrics is None and not d.settings.services[service.name].slo.enabled:
        return None
    return service.metrics_endpoint()


def rule_labels(d: Deployment, service: Service) -> dict[str, str]:
    """Labels on every recorded series and alert (SLO rules, dashboards): who to route to, and what it is about."""
    return {"namespace": d.namespace, "service": service.name, "tenant": d.name, "tier": d.tier.name, "environment": d.env}


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
    #: disaster_recovery: the secrets replicate to the DR region, and the role must read them
    #: there without a Terraform apply in the middle of a regional outage.
    any_region: bool = False

    @property
    def secret_arns(self) -> str:
        region = "*" if self.any_region else self.region
        return f"arn:aws:secretsmanager:{region}:{self.account}:secret:{self.prefix}*"

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


def secret_store_addon(model: Model, env: str) -> Addon | None:
    """The add-on in ``env`` that provides the SecretStore kind and runs with an IRSA role (the
    External Secrets Operator every reader role trusts), or None."""
    return next(
        (a for a in model_addons.in_environment(model.catalog, env) if SECRET_STORE_KIND in a.provides_crds and a.service_account),
        None,
    )


def secret_reader(model: Model, d: Deployment, store: Addon | None = None) -> SecretReader | None:
    """The tenant's reader, or None when it reads no secrets or no add-on in its environment
    provides the SecretStore kind (then the contract check reports the missing store), or the
    tenant's account is vended and its id not recorded yet (held: no ARN to name). ``store``:
    :func:`secret_store_addon` of ``d``'s environment, when a caller asking for a whole
    environment's readers looked it up once (None: looked up here)."""
    arns = secret_reader_arns(model, d, store)
    if arns is None:
        return None
    platform = model.platform
    principal, role_arn = arns
    return SecretReader(
        store=platform.secret_store,
        namespace=d.namespace,
        region=serving_region(d.environment, d.name),
        account=d.account_id,
        role_name=naming.secret_reader_role_name(platform, d.env, d.name),
        role_arn=role_arn,
        principal=principal,
        external_id=naming.secret_reader_external_id(platform, d.env, d.name),
        prefix=naming.secret_prefix(platform, d.env, d.name),
        any_region=d.environment.disaster_recovery is not None,
    )


def secret_reader_arns(model: Model, d: Deployment, store: Addon | None = None) -> tuple[str, str] | None:
    """(principal, role ARN) of :func:`secret_reader`'s reader (None: as it): the two fields
    the shared root's add-on roles need of each of 10,000 tenants, without the rest."""
    if not reads_secrets(d) or d.account_pending:
        return None
    eso = store or secret_store_addon(model, d.env)
    if eso is None:
        return None
    platform = model.platform
    return (
        model_addons.role_arn(d.environment.accounts.shared_services, platform, d.env, eso.name),
        naming.secret_reader_role_arn(d.account_id, platform, d.env, d.name),
    )


#: What a pool's reader role reads, as its rendered policy names them (templates/terraform/
#: _producers.tf.j2 ``pool_reader``): the RDS-managed master secret and the pool's coordinates.
POOL_READABLE = ("aws_secretsmanager_secret.pool_admin_endpoint.arn", "module.db.db_instance_master_user_secret_arn")
#: The tag RDS puts on the master user secret it manages (its name is AWS's): the instance ARN.
RDS_SECRET_TAG = "aws:rds:primaryDBInstanceArn"


@dataclass(frozen=True)
class PoolReader(SecretReader):
    """A pool's reader (``<org>-<env>-pool-<tier>-secret-reader`` in the pool account): the
    SecretStore ``store`` in ``<org>-pools`` assumes it for the bootstrap Jobs' admin Secret;
    it reads the pool's master secret and coordinates only (``prefix`` is the latter's name)."""

    tier: str = ""
    db_arn: str = ""

    @property
    def trust_detail(self) -> str:
        return reader_trust_detail(self.principal, self.namespace, list(POOL_READABLE))

    @property
    def master_secret(self) -> str:
        """The contract name of the RDS-managed master secret: what the ExternalSecret finds it by."""
        return f"{RDS_SECRET_TAG}={self.db_arn}"


def pooled_tiers(model: Model, env: str) -> list[str]:
    """The tiers with a pool (a pooled tenant) in ``env``."""
    return sorted({d.tier.name for d in model.in_environment(env) if not d.dedicated})


def pool_reader(model: Model, env: Environment, tier: str) -> PoolReader | None:
    """The pool's reader, or None without an add-on providing the SecretStore kind (the pool's
    Application then stays held: no admin Secret can exist)."""
    eso = secret_store_addon(model, env.name)
    account = env.accounts.pools.get(tier)
    if eso is None or account is None:
        return None
    platform, owner = model.platform, naming.pool_root(tier)
    region = env.aws.region  # the master secret is not replicated (docs/isolation.md)
    return PoolReader(
        store=naming.pool_admin_secret(tier),
        namespace=naming.pools_namespace(platform),
        region=region,
        account=account,
        role_name=naming.secret_reader_role_name(platform, env.name, owner),
        role_arn=naming.secret_reader_role_arn(account, platform, env.name, owner),
        principal=model_addons.role_arn(env.accounts.shared_services, platform, env.name, eso.name),
        external_id=naming.secret_reader_external_id(platform, env.name, owner),
        prefix=naming.pool_endpoint_secret(platform, env.name, tier),
        tier=tier,
        db_arn=f"arn:aws:rds:{region}:{account}:db:{naming.resource_prefix(platform, env.name, owner)}",
    )


def pool_readers(model: Model, env: Environment) -> list[PoolReader]:
    return [r for tier in pooled_tiers(model, env.name) if (r := pool_reader(model, env, tier)) is not None]


# --- elastic capacity (helm, argocd rollouts, capacity, terraform capacity) ------------------

#: The add-ons the capacity levers need (catalog/addons/): without one, its lever is off.
KEDA_ADDON = "keda"
KARPENTER_ADDON = "karpenter"
#: Node label and taint key of the Karpenter NodePools' workload classes (targets/capacity.py).
WORKLOAD_CLASS = "companyos.io/workload-class"


def scaling_path(env: str, tenant: str, service: str) -> str:
    """One tenant's KEDA ScaledObject and TriggerAuthentication of a service (synced by its Application)."""
    return f"rendered/argocd/{env}/scaling/{tenant}/{service}.yaml"


def has_addon(model: Model, env: str, addon: str) -> bool:
    return any(a.name == addon for a in model_addons.in_environment(model.catalog, env))


def keda_scaled(model: Model, d: Deployment, service: Service) -> bool:
    """KEDA, not a plain HPA, scales the service: it scales on a queue's depth or to zero
    (an HPA can do neither), and the KEDA add-on runs in the environment."""
    auto = d.settings.services[service.name].autoscaling
    return auto.enabled and (auto.queue is not None or auto.scale_to_zero) and has_addon(model, d.env, KEDA_ADDON)


def workload_class(d: Deployment, service: Service) -> str:
    """The NodePool class of a tenant service: ``spot`` (interruptible) or ``tenant`` (on-demand)."""
    return "spot" if d.settings.services[service.name].capacity == "spot" else "tenant"


def placement(model: Model, d: Deployment, service: Service) -> dict[str, Any]:
    """nodeSelector and tolerations that put the pods on their class's NodePool (tainted, so
    nothing else lands there); empty without Karpenter, whose pools carry the label."""
    if not has_addon(model, d.env, KARPENTER_ADDON):
        return {}
    cls = workload_class(d, service)
    return {
        "nodeSelector": {WORKLOAD_CLASS: cls},
        "tolerations": [{"key": WORKLOAD_CLASS, "operator": "Equal", "value": cls, "effect": "NoSchedule"}],
    }


def queue_name(model: Model, env: str, tenant: str, queue: str) -> str:
    """The SQS name of a service's own queue (``Service.queues``) for one tenant."""
    return f"{naming.resource_prefix(model.platform, env, tenant)}-{queue}"


def queue_url(region: str, account: str, name: str) -> str:
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}"


# --- cross-environment facts: never from the slice a PER_ENVIRONMENT unit renders


def promotion_chain(model: Model) -> tuple[Environment, ...]:
    """Every environment, in promotion order, from the whole catalog. A PER_ENVIRONMENT
    target renders one environment's slice of the model (output/parallel.py), whose
    ``environments`` holds that environment alone: the next or the last environment read
    from it would depend on how the render was split."""
    envs = {name: entry.spec for name, entry in model.catalog.environments.items()}
    return tuple(envs[name] for name in promotion_order(envs))


def next_environment(model: Model, env: Environment) -> Environment | None:
    """The environment promoted from ``env`` (None at the end of the chain)."""
    return next((e for e in promotion_chain(model) if e.promotion.after == env.name), None)


def is_last_environment(model: Model, env: str) -> bool:
    """True for the end of the promotion chain (production)."""
    chain = promotion_chain(model)
    return bool(chain) and chain[-1].name == env


# --- disaster recovery (issue 15): what terraform/disaster_recovery.py and argocd/standby.py agree on

#: Argo CD's application controller service account (argo-cd chart default): its IRSA role
#: registers and deploys to the standby cluster.
ARGOCD_CONTROLLER_SA = "argocd-application-controller"


def failed_over(env: Environment, tenant: str) -> bool:
    """True when ``tenant`` is served from the DR region: the failover workflow committed
    ``disaster_recovery.active: true`` (every tenant) or listed it in ``active_tenants``."""
    dr = env.disaster_recovery
    return dr is not None and (dr.active or tenant in dr.active_tenants)


def serving_region(env: Environment, tenant: str) -> str:
    """Where a tenant's secrets are read from: the DR region once the failover workflow has
    failed it over (it promoted the DR replicas of the secrets and pointed them at the
    promoted databases; ``failed_over``), else the primary."""
    return env.aws.dr_region if failed_over(env, tenant) else env.aws.region


def ingress_group_key(cluster: str, group: str) -> str:
    """The ``ingress_group`` contract's name: Ingress group ``group`` on cluster ``cluster``
    (provided by the tenant's cell file, consumed by its ALB alarms)."""
    return f"{cluster}/{group}"


def standby_cluster(platform: Platform, env: str) -> str:
    """The standby EKS cluster in the DR region (registered in Argo CD, scaled to zero)."""
    return f"{naming.cluster_name(platform, env)}-dr"


def argocd_standby_role(platform: Platform, env: str) -> str:
    """The IRSA role of Argo CD's controller: reads the standby connection, admitted there."""
    return f"{platform.organization}-{env}-argocd-standby"


def argocd_standby_secret(platform: Platform, env: str) -> str:
    """The Secrets Manager secret with the standby cluster's endpoint and CA (shared root)."""
    return f"{platform.organization}-{env}-argocd-standby-cluster"


def argocd_controller_role(platform: Platform, env: Environment) -> str:
    """The one IRSA role of Argo CD's application controller in ``env``: it reads the
    connections of every cluster Argo CD registers from the shared root (the standby, the cells
    after the first) and is admitted on each. Where a standby exists it keeps the name it had
    before cells (renaming would replace the live role): ``<org>-<env>-argocd-standby``."""
    if env.disaster_recovery is not None:
        return argocd_standby_role(platform, env.name)
    return f"{platform.organization}-{env.name}-argocd-controller"


def argocd_controller_role_arn(platform: Platform, env: Environment) -> str:
    return f"arn:aws:iam::{env.accounts.shared_services}:role/{argocd_controller_role(platform, env)}"


def argocd_cell_secret(platform: Platform, env: str, cell: str) -> str:
    """The Secrets Manager secret with a cell cluster's endpoint, CA and name (shared root,
    every cell after the first: the first is Argo CD's own cluster)."""
    return f"{platform.organization}-{env}-argocd-cell-{cell}-cluster"


def region_drill_document(platform: Platform, env: str) -> str:
    """The SSM Automation document of the quarterly region-failover drill (shared root)."""
    return f"{platform.organization}-{env}-region-failover-drill"


def fis_template_names(platform: Platform, env: str) -> list[str]:
    """The ``Name`` tags of the environment's AWS FIS experiment templates (shared root):
    the chaos workflow finds them by tag, their ids exist only after apply."""
    prefix = naming.resource_prefix(platform, env, naming.SHARED_ROOT)
    return [f"{prefix}-pod-termination", f"{prefix}-instance-termination"]


def verify_vault(platform: Platform, env: str) -> str:
    """The AWS Backup vault in the ``dr-verify`` account that receives every copy (drills)."""
    return f"{platform.organization}-{env}-dr-verify"


#: The DB subnet group every restored drill copy is placed in (dr-verify account, DR region).
RESTORE_DRILL_SUBNET_GROUP = "restore-drill"
#: The verifier task's container: its log stream is ``<container>/<container>/<task id>``.
RESTORE_VERIFIER_CONTAINER = "verifier"


def restore_drill(platform: Platform, env: str, dr_region: str, verify_account: str) -> dict[str, str]:
    """The names of the restore drill's network and verifier in the ``dr-verify`` account (the
    shared root's dr.tf creates them, the restore-drill workflow runs the verifier by them)."""
    prefix = f"{platform.organization}-{env}"
    cluster = f"{prefix}-restore-drill"
    family = f"{prefix}-restore-verifier"
    log_group = f"/{prefix}/restore-verifier"
    parameter = f"/{platform.organization}/{env}/restore-drill/network"
    ecs = f"arn:aws:ecs:{dr_region}:{verify_account}"
    return {
        "vpc": cluster,
        "subnet_group": RESTORE_DRILL_SUBNET_GROUP,
        "db_security_group": f"{prefix}-restore-drill-db",
        "verifier_security_group": f"{prefix}-restore-drill-verifier",
        "cluster": cluster,
        "cluster_arn": f"{ecs}:cluster/{cluster}",
        "family": family,
        "task_definition_arn": f"{ecs}:task-definition/{family}",
        "container": RESTORE_VERIFIER_CONTAINER,
        "log_group": log_group,
        "log_group_arn": f"arn:aws:logs:{dr_region}:{verify_account}:log-group:{log_group}",
        "execution_role": f"{family}-execution",
        "parameter": parameter,
        "parameter_arn": f"arn:aws:ssm:{dr_region}:{verify_account}:parameter{parameter}",
        "kms_alias": f"alias/{cluster}",
        "cache_prefix": "restore-drill",
        # the verifier's output lines in its log stream: the integrity JSON (in chunks), the smoke answer
        "integrity_mark": "companyos-integrity",
        "smoke_mark": "companyos-smoke",
    }


def restore_verifier_detail(names: Mapping[str, str | None]) -> str:
    """The ``ecs_task`` contract detail of the verifier: what the workflow runs it with (the
    consumer's from the catalog's names, the producer's read back from dr.tf; a piece dr.tf
    lacks reads ``None`` and breaks the match)."""
    keys = ("cluster", "container", "log_group", "parameter", "subnet_group")
    return "; ".join(f"{key} {names[key]}" for key in keys)


def github_trust(platform: Platform, env: str | None = None) -> str:
    """The ``iam_role`` contract detail of a role GitHub Actions assumes by OIDC: the exact
    ``sub`` claim its trust names. ``env``: a job behind that environment's approval
    (failover, failback); None: a scheduled job on the platform revision (drills, chaos)."""
    repo = platform.repository
    subject = f"repo:{repo.github}:environment:{env}" if env is not None else f"repo:{repo.github}:ref:refs/heads/{repo.revision}"
    return f"trusts {subject}"


def chained_trust(role_arn: str) -> str:
    """The ``iam_role`` contract detail of a role assumed only from ``role_arn`` (role chaining)."""
    return f"assumable by {role_arn}"


#: Key prefix of AWS Config's deliveries in the organization log bucket (CloudTrail's: AWSLogs/).
ORG_LOG_CONFIG_PREFIX = "config"


def org_log_bucket(platform: Platform) -> str | None:
    """The organization's object-locked log bucket in log-archive (terraform/audit.py creates
    it; every root's Config recorder delivers to it); None without ``aws_organization``."""
    settings = platform.aws_organization
    if settings is None:
        return None
    return f"{platform.organization}-cloudtrail-{settings.log_archive_account}"
