"""Terraform roots: ``rendered/terraform/<env>/<root>/*.tf``.

One root per unit of blast radius and state, in the account that owns its resources:

* ``shared``: the environment's control plane in the shared-services account (VPC, EKS with
  managed node groups and a Fargate profile for system pods, the DNS zone, platform logs and
  alerts) plus a pre-provisioned standby VPC in the DR region;
* ``pool-<tier>``: a pooled tier's data plane in its pool account (VPC, RDS PostgreSQL, Redis
  in cluster mode, the S3 bucket tenants get prefixes in, an SNS topic), present only when
  the tier has tenants in the environment;
* ``tenant-<name>``: what belongs to one tenant. Dedicated tiers: the tenant's own account
  with VPC, KMS, RDS, Redis, S3, SQS/SNS. Pooled tiers: the tenant's CMK, queue and the IAM
  policy that fences it into its S3 prefix. Both: an IRSA role per service (named exactly as
  the Helm values annotate it), a budget with anomaly detection, and CloudFront + WAF in
  front of public services.

Every root is the same five files: ``versions.tf``, ``backend.tf``, ``providers.tf``,
``main.tf`` and ``outputs.tf``. The Python side decides *what* a root contains (names,
CIDRs, guardrail values, which providers); the templates in ``templates/terraform/`` decide
*how* it reads, and :func:`generator.targets.terraform.hcl.format_hcl` makes the layout canonical.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from generator.catalog import spec
from generator.formats import emit
from generator.formats.templating import Templates
from generator.model import naming, networks
from generator.model.resolve import Deployment, Model
from generator.targets.base import RenderedFile
from generator.targets.terraform import addressing
from generator.targets.terraform.hcl import format_hcl
from generator.targets.terraform.modules import (
    MODULES,
    TERRAFORM_VERSION,
    required_providers,
)

NAME = "terraform"
#: Each environment's files depend on that environment's slice of the model only (see parallel.py).
PER_ENVIRONMENT = True
#: Rough work per deployment relative to the Helm target (only schedules parallel renders).
RELATIVE_COST = 8
COMMON = ("versions.tf", "backend.tf", "providers.tf")
MACROS = "terraform/_blocks.tf.j2"
#: Root kind -> its main.tf / outputs.tf template folder.
KIND_TEMPLATES = {"shared": "shared", "pool": "pool", "dedicated": "tenant-dedicated", "pooled": "tenant-pooled"}
#: Modules each kind of root calls (for required_providers); edge modules are added per root.
KIND_MODULES = {
    "shared": {"vpc", "vpc_endpoints", "eks", "kms", "sns"},
    "pool": {"vpc", "vpc_endpoints", "kms", "iam_oidc_provider", "security_group_postgresql", "rds", "elasticache", "s3_bucket", "sns"},
    "dedicated": {
        "vpc",
        "vpc_endpoints",
        "kms",
        "iam_oidc_provider",
        "security_group_postgresql",
        "rds",
        "elasticache",
        "s3_bucket",
        "sqs",
        "sns",
        "iam_irsa",
    },
    "pooled": {"kms", "sqs", "iam_irsa"},
}
EDGE_MODULES = {"cloudfront", "wafv2"}
#: CloudFront is global, but its certificate and a CLOUDFRONT-scoped WAF live in us-east-1.
EDGE_REGION = "us-east-1"


@dataclass(frozen=True)
class Provider:
    """One ``provider "aws"`` block: the default one (alias None) or an aliased one."""

    alias: str | None
    region: str
    account: str
    role_arn: str
    session: str


@dataclass(frozen=True)
class Network:
    cidr: str
    dr_cidr: str
    azs: list[str]
    dr_azs: list[str]
    private: list[str]
    public: list[str]
    dr_private: list[str]
    dr_public: list[str]


@dataclass
class Root:
    """Everything the templates of one root need, already decided."""

    env: spec.Environment
    name: str
    kind: str
    account: str
    settings: spec.Settings
    tags: dict[str, str]
    providers: list[Provider]
    sources: list[str]
    prefix: str
    deployment: Deployment | None = None
    network: Network | None = None
    shared_cidr: str = ""
    #: Private route tables of the shared VPC (the vpc module makes one per NAT gateway).
    shared_route_tables: int = 0
    edge: list[tuple[str, str]] = field(default_factory=list)
    irsa: list[dict[str, str]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)

    @property
    def tenant(self) -> str | None:
        """The tenant of a tenant root (its deployment's name); None for shared and pools."""
        return self.deployment.name if self.deployment is not None else None

    @property
    def dir(self) -> str:
        return naming.terraform_root_dir(self.env.name, self.name)

    @property
    def modules(self) -> set[str]:
        used = set(KIND_MODULES[self.kind])
        if self.edge:
            used |= EDGE_MODULES
        if self.settings.database.cross_region_copy and self.kind in ("pool", "dedicated"):
            used.add("rds_backup_replication")
        return used

    @property
    def route_tables(self) -> int:
        return route_tables(self.settings)


def route_tables(settings: spec.Settings) -> int:
    """Private route tables the vpc module creates: one per NAT gateway."""
    return settings.network.az_count if settings.network.nat_gateways == "per_az" else 1


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    for root in roots(model):
        yield from _files(model, templates, root)


# --- which roots exist ------------------------------------------------------------------------


def roots(model: Model) -> Iterator[Root]:
    """Every root of every environment, in promotion order, then shared, pools, tenants."""
    nets: networks.Networks = model.catalog.single("networks").spec
    for env in model.environments:
        deployments = model.in_environment(env.name)
        shared = _shared(model, env, nets)
        yield shared
        for tier in sorted({d.tier.name for d in deployments if not d.dedicated}):
            yield _pool(model, env, model.tiers[tier], nets, shared)
        for d in deployments:
            yield _tenant(model, d, nets, shared)


def _network(nets: networks.Networks, env: spec.Environment, key: str, az_count: int) -> Network:
    cidr = networks.vpc_cidr(nets, env.name, key)
    dr = networks.dr_cidr(nets, env.name, key)
    private, public = addressing.subnets(cidr, az_count)
    dr_private, dr_public = addressing.subnets(dr, az_count)
    return Network(
        str(cidr), str(dr), _azs(env.aws.region, az_count), _azs(env.aws.dr_region, az_count), private, public, dr_private, dr_public
    )


def _azs(region: str, count: int) -> list[str]:
    return [f"{region}{zone}" for zone in "abc"[:count]]


def _provider(model: Model, env: spec.Environment, root: str, account: str, region: str, alias: str | None = None) -> Provider:
    session = naming.resource_prefix(model.platform, env.name, root)[:64]
    return Provider(alias, region, account, naming.account_role_arn(account, model.platform), session)


def _tags(env: spec.Environment, tenant: str, payer: spec.Platform | spec.Tenant) -> dict[str, str]:
    """Default tags of every resource of a root; ``payer`` (the platform for shared and pool
    roots, the tenant for its own) supplies the owner and cost center."""
    return {
        "environment": env.name,
        "tenant": tenant,
        "owner": payer.owner,
        "cost-center": payer.cost_center,
        "managed-by": emit.GENERATOR,
    }


def _shared(model: Model, env: spec.Environment, nets: networks.Networks) -> Root:
    settings = model.base_settings(None, env.name)
    account = env.accounts.shared_services
    name = naming.SHARED_ROOT
    prefix = f"{model.platform.organization}-{env.name}"
    return Root(
        env=env,
        name=name,
        kind="shared",
        account=account,
        settings=settings,
        tags=_tags(env, "shared", model.platform),
        providers=[
            _provider(model, env, name, account, env.aws.region),
            _provider(model, env, name, account, env.aws.dr_region, "dr"),
            _provider(model, env, name, account, EDGE_REGION, "edge"),
        ],
        sources=[model.source("platform", "platform"), model.source("environment", env.name), networks.NETWORKS_PATH],
        prefix=prefix,
        network=_network(nets, env, name, settings.network.az_count),
        names={
            "cluster": naming.cluster_name(model.platform, env.name),
            "kms_alias": naming.kms_alias(model.platform, env.name, name),
            "log_group": naming.log_group(model.platform, env.name, "platform"),
        },
        budget=_budget(settings, [], tag_filter=None),
    )


def _pool(model: Model, env: spec.Environment, tier: spec.Tier, nets: networks.Networks, shared: Root) -> Root:
    settings = model.base_settings(tier.name, env.name)
    account = env.accounts.pools[tier.name]
    name = naming.pool_root(tier.name)
    providers = [_provider(model, env, name, account, env.aws.region)]
    if settings.database.cross_region_copy:
        providers.append(_provider(model, env, name, account, env.aws.dr_region, "dr"))
    providers.append(_provider(model, env, name, env.accounts.shared_services, env.aws.region, "shared"))
    return Root(
        env=env,
        name=name,
        kind="pool",
        account=account,
        settings=settings,
        tags=_tags(env, name, model.platform),
        providers=providers,
        sources=[
            model.source("platform", "platform"),
            model.source("environment", env.name),
            model.source("tier", tier.name),
            networks.NETWORKS_PATH,
        ],
        prefix=naming.resource_prefix(model.platform, env.name, name),
        network=_network(nets, env, name, settings.network.az_count),
        shared_cidr=shared.network.cidr,
        shared_route_tables=shared.route_tables,
        names=_data_names(model, env, name),
        budget=_budget(settings, [], tag_filter=None),
    )


def _data_names(model: Model, env: spec.Environment, owner: str) -> dict[str, str]:
    return {
        "bucket": naming.bucket_name(model.platform, env.name, owner),
        "kms_alias": naming.kms_alias(model.platform, env.name, owner),
        "cache_id": naming.cache_id(env.name, owner),
        "db": naming.resource_prefix(model.platform, env.name, owner),
        "log_group": naming.log_group(model.platform, env.name, owner),
    }


def _tenant(model: Model, d: Deployment, nets: networks.Networks, shared: Root) -> Root:
    env, tenant = d.environment, d.tenant
    name = naming.tenant_root(tenant.name)
    account = d.account_id
    providers = [_provider(model, env, name, account, env.aws.region)]
    if d.dedicated and d.settings.database.cross_region_copy:
        providers.append(_provider(model, env, name, account, env.aws.dr_region, "dr"))
    edge = [(svc.name, naming.hostname(svc.name, tenant.name, env)) for svc in d.services if d.public_ingress(svc)]
    if edge:
        providers.append(_provider(model, env, name, account, EDGE_REGION, "edge"))
    if edge or d.dedicated:
        providers.append(_provider(model, env, name, env.accounts.shared_services, env.aws.region, "shared"))
    names = _data_names(model, env, tenant.name)
    if not d.dedicated:
        names["bucket"] = naming.bucket_name(model.platform, env.name, naming.pool_root(d.tier.name))
        names["s3_prefix"] = naming.tenant_s3_prefix(tenant.name)
    names["origin"] = naming.ingress_origin_hostname(tenant.name, env)
    sources = [*d.sources, *(model.source("service", s.name) for s in d.services)]
    if d.dedicated:
        sources.append(networks.NETWORKS_PATH)
    return Root(
        env=env,
        name=name,
        kind="dedicated" if d.dedicated else "pooled",
        account=account,
        settings=d.settings,
        tags=_tags(env, tenant.name, tenant),
        providers=providers,
        sources=sources,
        prefix=naming.resource_prefix(model.platform, env.name, tenant.name),
        deployment=d,
        network=_network(nets, env, name, d.settings.network.az_count) if d.dedicated else None,
        shared_cidr=shared.network.cidr,
        shared_route_tables=shared.route_tables,
        edge=edge,
        irsa=[
            {
                "service": svc.name,
                "module": f"irsa_{svc.name.replace('-', '_')}",
                "role": naming.irsa_role_name(model.platform, env.name, tenant.name, svc.name),
                "arn": naming.irsa_role_arn(account, model.platform, env.name, tenant.name, svc.name),
                "subject": f"{naming.namespace(tenant.name)}:{svc.name}",
            }
            for svc in d.services
        ],
        names=names,
        budget=_budget(d.settings, [tenant.owner], tag_filter=None if d.dedicated else tenant.name),
    )


def _budget(settings: spec.Settings, extra_notify: list[str], tag_filter: str | None) -> dict[str, Any]:
    notify = sorted({*settings.budget.notify, *extra_notify})
    return {
        "amount": settings.budget.monthly_usd,
        "thresholds": sorted(set(settings.budget.alert_thresholds)),
        "notify": notify,
        "tag_filter": tag_filter,
        #: Alert on an anomaly costing at least 5% of the monthly budget (and at least $10).
        "anomaly_usd": max(10, settings.budget.monthly_usd // 20),
    }


# --- files ------------------------------------------------------------------------------------


def _files(model: Model, templates: Templates, root: Root) -> Iterator[RenderedFile]:
    folder = KIND_TEMPLATES[root.kind]
    context = _context(model, root)
    names = [(f, f"terraform/{f}.j2") for f in COMMON]
    names += [(f, f"terraform/{folder}/{f}.j2") for f in ("main.tf", "outputs.tf")]
    for filename, template in names:
        sources = [*root.sources, templates.path(template)]
        if filename == "main.tf":
            sources.append(templates.path(MACROS))
        yield RenderedFile(
            path=f"{root.dir}/{filename}",
            text=format_hcl(templates.render(template, **context)),
            sources=tuple(sources),
            tenant=root.tenant,
            environment=root.env.name,
            root=root.dir,
        )


def _context(model: Model, root: Root) -> dict[str, Any]:
    state = model.platform.terraform_state
    return {
        "r": root,
        "s": root.settings,
        "env": root.env,
        "platform": model.platform,
        "m": {short: {"source": source, "version": version} for short, (source, version) in MODULES.items()},
        "terraform_version": TERRAFORM_VERSION,
        "providers": required_providers(root.modules),
        "state": {
            "bucket": state.bucket,
            "region": state.region,
            "dynamodb_table": state.dynamodb_table,
            "kms_key_id": _state_kms_arn(state),
            "role_arn": naming.account_role_arn(state.account, model.platform),
            "key": naming.terraform_state_key(root.env.name, root.name),
            "shared_key": naming.terraform_state_key(root.env.name, naming.SHARED_ROOT),
        },
        "shared_account": root.env.accounts.shared_services,
        "cluster": naming.cluster_name(model.platform, root.env.name),
        "engine_major": root.settings.database.engine_version.split(".")[0],
    }


def _state_kms_arn(state: spec.TerraformState) -> str:
    """The backend wants a key ARN; the catalog may name the key by alias."""
    if state.kms_key_id.startswith("arn:"):
        return state.kms_key_id
    name = state.kms_key_id if state.kms_key_id.startswith("alias/") else f"key/{state.kms_key_id}"
    return f"arn:aws:kms:{state.region}:{state.account}:{name}"
