"""Terraform roots: ``rendered/terraform/<env>/<root>/*.tf``.

One root per unit of blast radius and state, in the account that owns its resources:
``shared`` (the environment's control plane), ``pool-<tier>`` (a pooled tier's data plane)
and ``tenant-<name>``; each is the same five files. The Python side decides *what* a root
contains (names, CIDRs, guardrail values, providers); the templates in ``templates/terraform/``
decide *how* it reads, and :func:`generator.targets.terraform.hcl.format_hcl` makes the layout
canonical. What each root holds: docs/terraform.md ("Roots").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from generator.catalog import spec
from generator.errors import Location
from generator.formats import emit
from generator.formats.templating import Templates, hcl_value
from generator.model import name_registry, naming, networks
from generator.model.resolve import Deployment, Model
from generator.targets.base import RenderedFile
from generator.targets.common import (
    POOL_READABLE,
    RDS_SECRET_TAG,
    PoolReader,
    SecretReader,
    pool_reader,
    reader_assume_detail,
    reader_trust_detail,
    secret_access_detail,
    secret_reader,
)
from generator.targets.contracts import EKS_CRDS, Contract, covers
from generator.targets.contracts import at as contract_at
from generator.targets.terraform import access_entries as access_entries_tf
from generator.targets.terraform import (
    addon_roles,
    addressing,
    alarms,
    cell_registration,
    config_recorder,
    data_isolation,
    disaster_recovery,
    isolation,
    log_archive,
    registry,
    vended,
)
from generator.targets.terraform import capacity as capacity_tf
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
#: Producers of what other targets consume (secrets, replicas, origin certificate).
PRODUCER_MACROS = "terraform/_producers.tf.j2"
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
    #: Tenant roots: the EKS cluster of the tenant's cell (its Ingress group's ALB is there).
    cluster: str = ""
    irsa: list[dict[str, str]] = field(default_factory=list)
    #: Shared root only: the platform add-ons' IRSA roles (``addons.tf``, see addon_roles.py).
    addon_roles: list[dict[str, Any]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    #: Secrets Manager entries this root creates: one per key an ExternalSecret reads.
    secrets: list[dict[str, Any]] = field(default_factory=list)
    #: Tenant roots: the role ESO assumes to read (only) this tenant's secrets (common.SecretReader).
    secret_reader: SecretReader | None = None
    #: Pool roots: the role ESO assumes for the bootstrap Jobs' admin Secret (common.PoolReader).
    pool_reader: PoolReader | None = None
    #: RDS identifiers of the database's read replicas (pool and dedicated roots).
    replicas: list[str] = field(default_factory=list)
    #: Shared root: one security group for pods per tenant namespace (terraform/isolation.py).
    pod_groups: list[dict[str, str]] = field(default_factory=list)
    #: Pool and dedicated roots: the tenants whose pod groups (only) reach the data stores.
    data_clients: list[str] = field(default_factory=list)
    #: Shared and pool roots: the pools' bootstrap Jobs' security group (isolation.pool_admin; {} without pools).
    pool_admin: dict[str, Any] = field(default_factory=dict)
    #: Shared root: one EKS cluster per cell (name, module, cluster); the first is ``module.eks``.
    cells: list[dict[str, str]] = field(default_factory=list)

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
        if self.addon_roles:
            used.add("iam_irsa")
        if alarms.applies(self):
            used |= {"kms", "sns"}
        if log_archive.applies(self):
            used |= log_archive.MODULES
        if self.edge:
            used |= EDGE_MODULES
        if self.settings.database.cross_region_copy and self.kind in ("pool", "dedicated"):
            used.add("rds_backup_replication")
        return used

    @property
    def route_tables(self) -> int:
        return route_tables(self.settings)

    @property
    def vpc(self) -> Network:
        """This root's VPC, for roots that always have one (shared, pools)."""
        assert self.network is not None, f"{self.dir} has no VPC of its own"
        return self.network


def route_tables(settings: spec.Settings) -> int:
    """Private route tables the vpc module creates: one per NAT gateway."""
    return alarms.nat_gateways(settings)


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    for root in roots(model):
        yield from vended.resolve(model, _files(model, templates, root))


# --- which roots exist ------------------------------------------------------------------------


def roots(model: Model) -> Iterator[Root]:
    """Every root of every environment, in promotion order, then shared, pools, tenants."""
    entry = networks.networks_entry(model.catalog)
    assert entry is not None, "networks.yaml is required and checked at load time"
    nets = entry.spec
    for env in model.environments:
        deployments = model.in_environment(env.name)
        shared = _shared(model, env, nets)
        yield shared
        for tier in sorted({d.tier.name for d in deployments if not d.dedicated}):
            yield _pool(model, env, model.tiers[tier], nets, shared)
        for d in model.rendered_in(env.name):  # an incremental render (output/units.py) names a few
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
            # dr.tf: the dr-verify vault, its restore role and the restore drill's CI role
            *(
                [_provider(model, env, name, env.accounts.dr_verify, env.aws.dr_region, "dr_verify")]
                if disaster_recovery.enabled(env)
                else []
            ),
        ],
        sources=[
            model.source("platform", "platform"),
            model.source("environment", env.name),
            networks.NETWORKS_PATH,
            # one pod security group per tenant, its egress by its tier's isolation
            *sorted(
                {p for d in model.in_environment(env.name) for p in (model.source("tenant", d.name), model.source("tier", d.tier.name))}
            ),
        ],
        prefix=prefix,
        network=_network(nets, env, name, settings.network.az_count),
        names={
            "cluster": naming.cluster_name(model.platform, env.name),
            "kms_alias": naming.kms_alias(model.platform, env.name, name),
            "log_group": naming.log_group(model.platform, env.name, "platform"),
        },
        budget=_budget(settings, [], tag_filter=None),
        addon_roles=addon_roles.roles(model, env),
        pod_groups=isolation.pod_groups(model, env.name, nets),
        pool_admin=isolation.pool_admin(model, env.name, nets),
        cells=cell_clusters(model, env),
    )


def cell_clusters(model: Model, env: spec.Environment) -> list[dict[str, str]]:
    """Each cell's EKS cluster in the shared root: the first cell keeps ``module.eks`` and the
    environment's cluster name (nothing is renamed or recreated when cells are added); every
    other cell gets ``module.eks_<cell>`` named ``<cluster>-<cell>`` (networks.cell_cluster)."""
    out = []
    for i, cell in enumerate(networks.cells(env)):
        module = "eks" if i == 0 else f"eks_{cell.name.replace('-', '_')}"
        out.append({"name": cell.name, "module": module, "cluster": networks.cell_cluster(model.platform, env, cell.name)})
    return out


def _pool(model: Model, env: spec.Environment, tier: spec.Tier, nets: networks.Networks, shared: Root) -> Root:
    settings = model.base_settings(tier.name, env.name)
    account = env.accounts.pools[tier.name]
    name = naming.pool_root(tier.name)
    providers = [_provider(model, env, name, account, env.aws.region)]
    if settings.database.cross_region_copy or disaster_recovery.enabled(env):
        providers.append(_provider(model, env, name, account, env.aws.dr_region, "dr"))
    providers.append(_provider(model, env, name, env.accounts.shared_services, env.aws.region, "shared"))
    if disaster_recovery.enabled(env):  # dr.tf: peer the DR VPC with the standby cluster's
        providers.append(_provider(model, env, name, env.accounts.shared_services, env.aws.dr_region, "shared_dr"))
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
        shared_cidr=shared.vpc.cidr,
        shared_route_tables=shared.route_tables,
        names=_data_names(model, env, name),
        budget=_budget(settings, [], tag_filter=None),
        replicas=_replicas(model, env, name, settings),
        data_clients=isolation.pool_clients(model, env.name, tier.name),
        pool_admin=isolation.pool_admin(model, env.name, nets),
        pool_reader=pool_reader(model, env, tier.name),
    )


def _replicas(model: Model, env: spec.Environment, owner: str, settings: spec.Settings) -> list[str]:
    """``database.read_replicas`` as real instances (ops/cost.py prices the same count)."""
    return [naming.db_replica_identifier(model.platform, env.name, owner, i) for i in range(1, settings.database.read_replicas + 1)]


def _secrets(model: Model, d: Deployment) -> list[dict[str, Any]]:
    """Every Secrets Manager name the tenant's ExternalSecrets read (``targets/helm.py`` and
    ``targets/migrations.py`` derive them with the same naming functions), once each."""
    found: dict[str, dict[str, Any]] = {}
    account, region = d.account_id, d.environment.aws.region
    for svc in d.services:
        slug = svc.name.replace("-", "_")
        for ref in svc.secrets:
            key = naming.secret_key(ref.key, d.name, d.env)
            rotation = None
            if ref.rotation is not None:
                rotation = {"lambda_arn": naming.rotation_lambda_arn(region, account, ref.rotation.lambda_name), "days": ref.rotation.days}
            found.setdefault(
                key,
                {
                    "address": f"{slug}_{ref.env.lower()}",
                    "name": key,
                    "kind": "app",
                    "service": svc.name,
                    "description": f"{ref.env} of {svc.name} for tenant {d.name} in {d.env}; value set out of band",
                    "rotation": rotation,
                },
            )
        if svc.uses_database:
            key = naming.db_secret_key(model.platform, d.env, d.name, svc.name)
            found.setdefault(
                key,
                {
                    "address": f"db_{slug}",
                    "name": key,
                    "kind": "database",
                    "service": svc.name,
                    "username": naming.db_username(d.name, svc.name),
                    "description": f"Database endpoint and role of {svc.name} (IAM authentication, no password)",
                    "rotation": None,
                },
            )
    if any(svc.uses_cache for svc in d.services):
        key = naming.cache_secret_key(model.platform, d.env, d.name)
        found[key] = {
            "address": "cache",
            "name": key,
            "kind": "cache",
            "service": "",
            "description": f"Redis endpoint of tenant {d.name} in {d.env}",
            "rotation": None,
        }
    return list(found.values())


def _data_names(model: Model, env: spec.Environment, owner: str) -> dict[str, str]:
    return {
        "bucket": naming.bucket_name(model.platform, env.name, owner),
        "kms_alias": naming.kms_alias(model.platform, env.name, owner),
        "cache_id": naming.cache_id(env.name, owner),
        "db": naming.resource_prefix(model.platform, env.name, owner),
        "log_group": naming.log_group(model.platform, env.name, owner),
        "cache_sg": name_registry.isolation_names(model.platform, env.name, owner)["cache"],
    }


def _tenant(model: Model, d: Deployment, nets: networks.Networks, shared: Root) -> Root:
    env, tenant = d.environment, d.tenant
    name = naming.tenant_root(tenant.name)
    account = d.account_id
    providers = [_provider(model, env, name, account, env.aws.region)]
    if d.dedicated and (d.settings.database.cross_region_copy or disaster_recovery.enabled(env)):
        providers.append(_provider(model, env, name, account, env.aws.dr_region, "dr"))
    edge = [(svc.name, naming.hostname(svc.name, tenant.name, env)) for svc in d.services if d.public_ingress(svc)]
    if edge:
        providers.append(_provider(model, env, name, account, EDGE_REGION, "edge"))
    if edge or d.dedicated:
        providers.append(_provider(model, env, name, env.accounts.shared_services, env.aws.region, "shared"))
    if d.dedicated and disaster_recovery.enabled(env):  # dr.tf: peer the DR VPC with the standby cluster's
        providers.append(_provider(model, env, name, env.accounts.shared_services, env.aws.dr_region, "shared_dr"))
    names = _data_names(model, env, tenant.name)
    names.update(isolation.tenant_names(model, env.name, tenant.name))
    if not d.dedicated:
        names["bucket"] = naming.bucket_name(model.platform, env.name, naming.pool_root(d.tier.name))
        names["s3_prefix"] = naming.tenant_s3_prefix(tenant.name)
    names["origin"] = naming.ingress_origin_hostname(tenant.name, env)
    names["ingress_group"] = naming.ingress_group(model.platform, env.name, tenant.name)
    sources = [*d.sources, *(model.source("service", s.name) for s in d.services)]
    if d.dedicated or (edge and len(networks.cells(env)) > 1):  # the CIDR plan; the cell record
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
        shared_cidr=shared.vpc.cidr,
        shared_route_tables=shared.route_tables,
        edge=edge,
        cluster=networks.cell_cluster(model.platform, env, networks.tenant_cell(model.catalog, env.name, tenant.name)),
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
        secrets=_secrets(model, d),
        secret_reader=secret_reader(model, d),
        replicas=_replicas(model, env, tenant.name, d.settings) if d.dedicated else [],
        data_clients=[tenant.name] if d.dedicated else [],
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
    if root.addon_roles:
        names.append((addon_roles.FILENAME, addon_roles.TEMPLATE))
    if not capacity_tf.capacity(model, root).empty:
        names.append((capacity_tf.FILENAME, capacity_tf.TEMPLATE))
    # The shared root's own HCL reads no tenant or tier file: they reach it as the per-tenant
    # records (_tenant_records), so its header names only what the file was made from.
    fleet = (  # only the shared root drops them: a pool root must not pay a fleet-wide scan
        {model.source(k, n) for d in model.in_environment(root.env.name) for k, n in (("tenant", d.name), ("tier", d.tier.name))}
        if root.kind == "shared"
        else set()
    )
    for filename, template in names:
        own = root.kind == "shared" and filename in (*COMMON, "main.tf", "outputs.tf")
        sources = [*(s for s in root.sources if not (own and s in fleet)), templates.path(template)]
        if filename in ("main.tf", addon_roles.FILENAME, capacity_tf.FILENAME):
            sources.append(templates.path(MACROS))
        if filename == "main.tf":
            sources.append(templates.path(PRODUCER_MACROS))
            sources.append(templates.path(isolation.MACROS))
            if cell_registration.applies(root):  # the other cells' access entries and API rules
                sources.append(templates.path(cell_registration.MACROS))
            if root.kind == "pool":
                sources.append(templates.path(data_isolation.MACROS))
        if filename == addon_roles.FILENAME:
            sources += [role["source"] for role in root.addon_roles]
        text = format_hcl(templates.render(template, **context))
        provides, consumes = contracts(model, root, filename, text)
        yield RenderedFile(
            path=f"{root.dir}/{filename}",
            text=text,
            sources=tuple(sources),
            tenant=root.tenant,
            environment=root.env.name,
            root=root.dir,
            provides=provides,
            consumes=consumes,
        )
    cells_tf = cell_registration.render(templates, root, context)
    if cells_tf is not None:
        text = format_hcl(cells_tf)
        provides, consumes = contracts(model, root, cell_registration.FILENAME, text)
        yield RenderedFile(
            path=f"{root.dir}/{cell_registration.FILENAME}",
            text=text,
            # the environment file only (its cells); no tenant or tier file reaches this text
            sources=(
                model.source("platform", "platform"),
                model.source("environment", root.env.name),
                templates.path(cell_registration.TEMPLATE),
                templates.path(cell_registration.MACROS),
            ),
            environment=root.env.name,
            root=root.dir,
            provides=provides,
            consumes=consumes,
        )
    yield from _tenant_records(model, root)
    for dr_file in disaster_recovery.files(model, templates, root, context):
        provides, consumes = contracts(model, root, disaster_recovery.FILENAME, dr_file.text)
        yield replace(dr_file, provides=provides, consumes=consumes)
    yield from alarms.files(model, templates, root, context)
    yield from log_archive.files(model, templates, root, context)
    yield from config_recorder.files(model, templates, root)
    if root.kind == "shared":
        yield RenderedFile(
            path=f"{root.dir}/{access_entries_tf.FILENAME}",
            text=format_hcl(templates.render(access_entries_tf.TEMPLATE, sso_path=access_entries_tf.SSO_PATH)),
            sources=(*root.sources, templates.path(access_entries_tf.TEMPLATE)),
            environment=root.env.name,
            root=root.dir,
        )
    ecr = registry.text(model, root.env) if root.kind == "shared" else None
    if ecr is not None:
        yield RenderedFile(
            path=f"{root.dir}/{registry.FILENAME}",
            text=format_hcl(ecr),
            sources=(*root.sources, *registry.sources(model)),
            environment=root.env.name,
            root=root.dir,
        )


#: Per-tenant records of the shared and pool roots, read by Terraform with fileset().
TENANT_RECORDS_DIR = "tenants"


def _tenant_records(model: Model, root: Root) -> Iterator[RenderedFile]:
    """``<root>/tenants/<tenant>.json`` of the shared root (pod group, data VPC, secret reader)
    and of a pool (its members): the root's HCL iterates over these files
    (templates/terraform/_isolation.tf.j2), so onboarding adds a file to the root and changes
    none of its ``.tf`` files, and parallel onboarding pull requests do not conflict."""
    if root.kind not in ("shared", "pool"):
        return
    groups = {g["tenant"]: g for g in root.pod_groups}
    members = set(root.data_clients)
    for d in model.rendered_in(root.env.name):
        if root.kind == "pool" and d.name not in members:
            continue
        record: dict[str, Any] = {"tenant": d.name}
        provides: list[Contract] = []
        if root.kind == "shared":
            reader = secret_reader(model, d)
            for role in root.addon_roles:  # the add-on roles that may assume this tenant's reader (addons.tf reads the records)
                if reader is not None and reader.role_arn in role["assumes"]:
                    arn = f"arn:aws:iam::{root.account}:role/{role['role']}"
                    at_addon = contract_at(model, "addon", role["addon"], "service_account")
                    provides.append(Contract("iam_role", reader.role_arn, root.env.name, detail=reader_assume_detail(arn), at=at_addon))
            record |= {
                "pod_group": groups[d.name]["name"],
                "namespace": groups[d.name]["namespace"],
                "data_cidr": groups[d.name]["data_cidr"],
                # the cell whose cluster runs the tenant's pods (its nodes reach the pod group)
                "cell": networks.tenant_cell(model.catalog, root.env.name, d.name),
                # empty when the tenant reads no secrets: no add-on role may assume anything for it
                "secret_reader": {"role": reader.role_arn if reader else "", "principal": reader.principal if reader else ""},
                # the team's Identity Center role -> its Kubernetes group (access.tf)
                "team": access_entries_tf.record(model, d.name),
            }
        yield RenderedFile(
            path=f"{root.dir}/{TENANT_RECORDS_DIR}/{d.name}.json",
            text=json.dumps(record, indent=2, sort_keys=True) + "\n",
            sources=(*d.sources, networks.NETWORKS_PATH),
            comment=None,
            tenant=d.name,
            environment=root.env.name,
            root=root.dir,
            provides=tuple(provides),
        )


# --- contracts (targets/contracts.py): read from the rendered HCL where it says it -----------

# Blocks at the start of a line are matched as "\n" + the block in "\n" + text (``_lines``):
# a literal first character lets the regex engine skip ahead, where a leading ``^`` is tried
# at every position (20-30x slower over 15,000 files).
_OUTPUT = re.compile(r'\noutput "([A-Za-z0-9_-]+)"')
_REMOTE = re.compile(r"data\.terraform_remote_state\.([A-Za-z0-9_]+)\.outputs\.([A-Za-z0-9_]+)")
_SECRET = re.compile(r'\nresource "aws_secretsmanager_secret" "[A-Za-z0-9_-]+" \{\n\s*name\s*=\s*"([^"]+)"')
#: The secret-reader role as rendered (templates/terraform/_producers.tf.j2): its trust's
#: principals and esoNamespace tag, and what its ReadTenantSecrets statement grants.
_READER_DOC = re.compile(r'\ndata "aws_iam_policy_document" "((?:secret|pool)_reader(?:_trust)?)" \{\n(.*?)^\}', re.MULTILINE | re.DOTALL)
_READER_PRINCIPALS = re.compile(r'principals \{\s*type\s*=\s*"AWS"\s*identifiers\s*=\s*\[([^\]]*)\]')
_READER_TAG = re.compile(r'variable\s*=\s*"aws:RequestTag/esoNamespace"\s*values\s*=\s*\[([^\]]*)\]')
_READER_GRANT = re.compile(r'sid\s*=\s*"ReadTenantSecrets"\s*actions\s*=\s*\[[^\]]*\]\s*resources\s*=\s*\[([^\]]*)\]')
_STRING = re.compile(r'"([^"]*)"')
#: The pool reader's grant (expressions, not strings: the ARNs are AWS's) and the RDS-managed master secret.
_POOL_GRANT = re.compile(r'sid\s*=\s*"ReadPoolAdminSecrets"\s*actions\s*=\s*\[[^\]]*\]\s*resources\s*=\s*\[([^\]]*)\]')
_MANAGED_MASTER = re.compile(r"\n\s*manage_master_user_password\s*=\s*true\b")


def _lines(text: str) -> str:
    """``text`` for the ``\n``-led block patterns above: its first line is a line too."""
    return "\n" + text


def rendered_reader(text: str) -> tuple[list[str], list[str], list[str]] | None:
    """(trusted principals, esoNamespace values, readable secret ARNs) of the secret-reader
    role in a rendered main.tf, or None if it has none. Read from the text, so a template
    that widens the policy or the trust breaks the contract, not only a test."""
    docs = dict(_READER_DOC.findall(_lines(text)))
    if "secret_reader_trust" not in docs or "secret_reader" not in docs:
        return None

    def strings(pattern: re.Pattern[str], body: str) -> list[str]:
        return [v for m in pattern.findall(body) for v in _STRING.findall(m)]

    trust, grant = docs["secret_reader_trust"], docs["secret_reader"]
    return strings(_READER_PRINCIPALS, trust), strings(_READER_TAG, trust), strings(_READER_GRANT, grant)


def rendered_pool_reader(text: str) -> tuple[list[str], list[str], list[str]] | None:
    """(trusted principals, esoNamespace values, what ReadPoolAdminSecrets grants) of a pool
    root's reader as rendered, or None if it has none."""
    docs = dict(_READER_DOC.findall(_lines(text)))
    if "pool_reader_trust" not in docs or "pool_reader" not in docs:
        return None
    trust = docs["pool_reader_trust"]
    principals = [v for m in _READER_PRINCIPALS.findall(trust) for v in _STRING.findall(m)]
    tags = [v for m in _READER_TAG.findall(trust) for v in _STRING.findall(m)]
    grants = [g.strip() for m in _POOL_GRANT.findall(docs["pool_reader"]) for g in m.split(",") if g.strip()]
    return principals, tags, grants


def _pool_reader_contracts(root: Root, text: str, where: Location) -> list[Contract]:
    """The pool reader with its rendered trust, and the two secrets the bootstrap's
    ExternalSecret reads (the coordinates by name, the master secret by its RDS tag) with the
    role whose rendered grant covers each."""
    reader = root.pool_reader
    found = rendered_pool_reader(text) if reader is not None else None
    if reader is None or found is None:
        return []
    principals, namespaces, grants = found
    trust = reader_trust_detail(", ".join(sorted(set(principals))), ", ".join(sorted(set(namespaces))) or "any namespace", grants)
    out = [Contract("iam_role", reader.role_arn, root.env.name, detail=trust, at=where)]
    endpoint, master = POOL_READABLE
    if reader.prefix in _SECRET.findall(_lines(text)):
        role = reader.role_arn if endpoint in grants else "no reader role"
        out.append(Contract("secret", reader.prefix, root.env.name, detail=secret_access_detail(root.account, role), at=where))
    if _MANAGED_MASTER.search(text):
        role = reader.role_arn if master in grants else "no reader role"
        out.append(Contract("secret", reader.master_secret, root.env.name, detail=secret_access_detail(root.account, role), at=where))
    return out


def contracts(model: Model, root: Root, filename: str, text: str) -> tuple[tuple[Contract, ...], tuple[Contract, ...]]:
    """Outputs provided and remote-state outputs read, secrets, DNS records and certificates
    as the rendered text declares them; IAM roles (and the service account each trust names)."""
    env = root.env.name
    where = contract_at(model, "tenant", root.tenant, "name") if root.tenant is not None else contract_at(model, "environment", env)
    provides: list[Contract] = [Contract("terraform_output", f"{root.dir}:{name}", env, at=where) for name in _OUTPUT.findall(_lines(text))]
    states = {"shared": naming.terraform_root_dir(env, naming.SHARED_ROOT)}
    if root.deployment is not None and not root.deployment.dedicated:
        states["pool"] = naming.terraform_root_dir(env, naming.pool_root(root.deployment.tier.name))
    consumes = [
        Contract("terraform_output", f"{states.get(alias, alias)}:{name}", env, at=where)
        for alias, name in sorted(set(_REMOTE.findall(text)))
    ]
    if filename == "main.tf":
        provides += _secret_contracts(root, text, where)
        provides += _pool_reader_contracts(root, text, where)
        hosts = [host for _, host in root.edge]
        if 'resource "aws_route53_record" "edge"' in text:
            provides += [Contract("dns_name", host, env, at=where) for host in hosts]
        if 'resource "aws_acm_certificate" "edge"' in text:
            provides += [Contract("certificate", host, env, detail=EDGE_REGION, at=where) for host in hosts]
        if 'resource "aws_acm_certificate" "origin"' in text:
            covered = [root.names["origin"], *hosts]
            provides += [Contract("certificate", host, env, detail=root.env.aws.region, at=where) for host in covered]
        held = root.deployment is not None and root.deployment.account_pending  # no Ingress until recorded
        if hosts and not held:  # CloudFront's origin: the record external-dns keeps for the tenant's Ingress
            consumes.append(Contract("dns_name", root.names["origin"], env, at=where))
        for role in root.irsa:
            provides.append(Contract("iam_role", role["arn"], env, detail=role["subject"], at=where))
            if not held:  # a held tenant has no chart values (no service account) yet
                consumes.append(Contract("service_account", role["subject"], env, at=where))
        if root.kind == "shared":
            provides += [Contract("crd_kind", kind, env, detail="eks", at=where) for kind in EKS_CRDS]
    if filename in (disaster_recovery.FILENAME, cell_registration.FILENAME):  # the CI, restore and Argo CD controller roles, as rendered
        provides += [Contract("iam_role", arn, env, detail=trust, at=where) for arn, trust in disaster_recovery.rendered_roles(root, text)]
        provides += [Contract("ecs_task", arn, env, detail=d, at=where) for arn, d in disaster_recovery.rendered_verifiers(root, text)]
    if filename == addon_roles.FILENAME:
        for role in root.addon_roles:
            at_addon = contract_at(model, "addon", role["addon"], "service_account")
            arn = f"arn:aws:iam::{root.account}:role/{role['role']}"
            provides.append(Contract("iam_role", arn, env, detail=role["subject"], at=at_addon))
            consumes.append(Contract("service_account", role["subject"], env, at=at_addon))
            # The tenants' reader roles this role may assume are declared by each tenant's record
            # (_tenant_records): the tenant's unit owns them, so onboarding leaves this file's entry alone.
            # The pools' readers are listed here by ARN: declared as this text grants them.
            for pool_arn in role["pool_assumes"]:
                if hcl_value(pool_arn) in text:
                    provides.append(Contract("iam_role", pool_arn, env, detail=reader_assume_detail(arn), at=at_addon))
    return tuple(provides), tuple(consumes)


def _secret_contracts(root: Root, text: str, where: Location) -> list[Contract]:
    """Each secret, with its account and the reader role whose rendered policy covers it
    (none: no SecretStore can read it), and the reader role with its rendered trust."""
    reader = root.secret_reader
    found = rendered_reader(text) if reader is not None else None
    readable = found[2] if found is not None else []
    out: list[Contract] = []
    for name in _SECRET.findall(_lines(text)):
        if root.pool_reader is not None and name == root.pool_reader.prefix:
            continue  # the pool's coordinates: _pool_reader_contracts
        arn = f"arn:aws:secretsmanager:{root.env.aws.region}:{root.account}:secret:{name}-AbCdEf"  # AWS appends 6 characters
        role = reader.role_arn if reader is not None and any(covers(grant, arn) for grant in readable) else "no reader role"
        out.append(Contract("secret", name, root.env.name, detail=secret_access_detail(root.account, role), at=where))
    if reader is not None and found is not None:
        principals, namespaces, _ = found
        trust = reader_trust_detail(", ".join(sorted(set(principals))), ", ".join(sorted(set(namespaces))) or "any namespace", readable)
        out.append(Contract("iam_role", reader.role_arn, root.env.name, detail=trust, at=where))
    return out


def _context(model: Model, root: Root) -> dict[str, Any]:
    state = model.platform.terraform_state
    return {
        "r": root,
        "s": root.settings,
        "env": root.env,
        "platform": model.platform,
        "m": {short: {"source": source, "version": version} for short, (source, version) in MODULES.items()},
        "terraform_version": TERRAFORM_VERSION,
        "providers": isolation.providers(required_providers(root.modules), bool(root.edge)),
        "isolation": isolation.context(),
        "data_isolation": data_isolation.context(root.names["bucket"]) if root.kind == "pool" else {},
        "state": {
            "bucket": state.bucket,
            "region": state.region,
            "dynamodb_table": state.dynamodb_table,
            "kms_key_id": _state_kms_arn(state),
            "role_arn": naming.account_role_arn(state.account, model.platform),
            "key": naming.terraform_state_key(root.env.name, root.name),
            "shared_key": naming.terraform_state_key(root.env.name, naming.SHARED_ROOT),
            "pool_key": naming.terraform_state_key(root.env.name, naming.pool_root(root.deployment.tier.name))
            if root.deployment is not None and not root.deployment.dedicated
            else "",
        },
        "shared_account": root.env.accounts.shared_services,
        "cluster": naming.cluster_name(model.platform, root.env.name),
        "engine_major": root.settings.database.engine_version.split(".")[0],
        "cap": capacity_tf.context(model, root),
        "argocd": cell_registration.context(model, root) if root.kind == "shared" else {},
        "pool_readable": list(POOL_READABLE),
        "rds_secret_tag": RDS_SECRET_TAG,
        # disaster_recovery.py: secrets replicate to the DR region under the replica key of dr.tf
        "dr_secrets_region": root.env.aws.dr_region if disaster_recovery.enabled(root.env) else "",
    }


def _state_kms_arn(state: spec.TerraformState) -> str:
    """The backend wants a key ARN; the catalog may name the key by alias."""
    if state.kms_key_id.startswith("arn:"):
        return state.kms_key_id
    name = state.kms_key_id if state.kms_key_id.startswith("alias/") else f"key/{state.kms_key_id}"
    return f"arn:aws:kms:{state.region}:{state.account}:{name}"
