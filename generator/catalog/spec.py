"""Pydantic models of every input file kind.

Two families:

* ``Settings`` and its groups describe the *resolved* settings tree every target reads:
  every field required, fully typed.
* :func:`partial` derives the *layer* form of the same tree (every field optional,
  ``None`` meaning "not set here"), which is what tiers, environments, services and
  tenants write. One source of truth, so a field added to the tree is automatically
  accepted in every layer, validated, exported in the JSON Schema and merged.

All models forbid unknown keys (typos are errors) and use strict types (``"3"`` is not
an integer; an unquoted account id is a number, not a string, and says so).
"""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
)

# --- shared value types -------------------------------------------------------------

#: A tenant or environment name ends up in S3 bucket names, IAM role names, ElastiCache ids
#: (40 chars), Kubernetes namespaces and file paths; 20 characters keeps every derived
#: name inside every limit, and the pattern keeps every path inside rendered/.
NAME_PATTERN = r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
AccountId = Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]
AwsRegion = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")]
Email = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")]
CostCenter = Annotated[str, StringConstraints(pattern=r"^CC-[0-9]{3,6}$")]
Quantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti)?$")]
ImageTag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
Duration = Annotated[str, StringConstraints(pattern=r"^[0-9]+(s|m|h)$")]
#: A DNS name: lowercase labels of at most 63 characters joined by dots.
DomainName = Annotated[
    str, StringConstraints(max_length=253, pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")
]
#: One argv element: printable, one line (it lands in Job specs and workflow `run:` steps).
Argument = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")]
#: A repository-relative folder: segments never start with '.', so no '..', no absolute
#: paths, no spaces or control characters.
RepoPath = Annotated[str, StringConstraints(max_length=256, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$")]
#: CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)


class Strict(BaseModel):
    """Base of every input model: unknown keys are errors, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- the settings tree (resolved form) -----------------------------------------------


class NetworkSettings(Strict):
    """VPC shape. ``nat_gateways: per_az`` is the prod default (one NAT per AZ)."""

    az_count: int = Field(ge=2, le=3)
    nat_gateways: Literal["single", "per_az"]
    vpc_endpoints: list[Literal["s3", "sts", "ssm", "ecr.api", "ecr.dkr", "logs"]]
    public_ingress: bool


class DatabaseSettings(Strict):
    """RDS PostgreSQL (dedicated) or the tenant's schema on the pooled instance."""

    engine_version: str
    instance_class: str
    allocated_storage_gb: int = Field(ge=20, le=65536)
    max_allocated_storage_gb: int = Field(ge=20, le=65536)
    multi_az: bool
    backup_retention_days: int = Field(ge=1, le=35)
    pitr: bool
    deletion_protection: bool
    cross_region_copy: bool
    read_replicas: int = Field(ge=0, le=5)


class CacheSettings(Strict):
    """ElastiCache Redis in cluster mode."""

    node_type: str
    shards: int = Field(ge=1, le=500)
    replicas_per_shard: int = Field(ge=0, le=5)
    snapshot_retention_days: int = Field(ge=0, le=35)


class LifecycleSettings(Strict):
    """S3 lifecycle: transition to IA, then Glacier, then expire noncurrent versions."""

    ia_days: int = Field(ge=30)
    glacier_days: int = Field(ge=1)
    expire_days: int = Field(ge=1)


class StorageSettings(Strict):
    versioning: bool
    object_lock: Literal["none", "governance", "compliance"]
    object_lock_days: int = Field(ge=1, le=36500)
    lifecycle: LifecycleSettings


class KmsSettings(Strict):
    #: AWS accepts a custom rotation period of 90 to 2560 days.
    rotation_days: int = Field(ge=90, le=2560)


class LogsSettings(Strict):
    retention_days: Literal[LOG_RETENTION_DAYS]  # type: ignore[valid-type]


class BudgetSettings(Strict):
    monthly_usd: int = Field(ge=1, le=10_000_000)
    alert_thresholds: list[Annotated[int, Field(ge=1, le=1000)]]
    notify: list[Email]


class QuotaSettings(Strict):
    """Per-namespace ResourceQuota and LimitRange defaults."""

    requests_cpu: Quantity
    requests_memory: Quantity
    limits_cpu: Quantity
    limits_memory: Quantity
    pods: int = Field(ge=1, le=10_000)


class ResourceAmounts(Strict):
    cpu: Quantity
    memory: Quantity


class Resources(Strict):
    requests: ResourceAmounts
    limits: ResourceAmounts


class AutoscalingSettings(Strict):
    enabled: bool
    min_replicas: int = Field(ge=1, le=1000)
    max_replicas: int = Field(ge=1, le=1000)
    target_cpu_percent: int = Field(ge=1, le=100)


class CanarySettings(Strict):
    enabled: bool


class ServiceSettings(Strict):
    """Per-service knobs every layer may tune (``settings.services.<name>``)."""

    replicas: int = Field(ge=0, le=1000)
    resources: Resources
    autoscaling: AutoscalingSettings
    canary: CanarySettings
    #: Pins the image tag (the rollback lever); ``None`` means the service's release tag.
    image_tag: ImageTag | None


class Settings(Strict):
    """The one settings tree that every layer speaks."""

    network: NetworkSettings
    database: DatabaseSettings
    cache: CacheSettings
    storage: StorageSettings
    kms: KmsSettings
    logs: LogsSettings
    budget: BudgetSettings
    quota: QuotaSettings
    services: dict[str, ServiceSettings]


# --- the layer form, derived ------------------------------------------------------------


@functools.cache
def partial(model: type[BaseModel]) -> type[BaseModel]:
    """Return a twin of ``model`` in which every field is optional and nested models are
    partial too: the form in which a single layer writes part of the settings tree."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = _partial_annotation(info.annotation)
        fields[name] = (annotation | None, Field(default=None, description=info.description, json_schema_extra=None, **_constraints(info)))
    return create_model(f"{model.__name__}Layer", __base__=Strict, __doc__=model.__doc__, **fields)


def _constraints(info: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for meta in info.metadata:
        for attr in ("ge", "le", "gt", "lt", "min_length", "max_length"):
            value = getattr(meta, attr, None)
            if value is not None:
                out[attr] = value
    return out


def _partial_annotation(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return partial(annotation)
    origin = get_origin(annotation)
    if origin is dict:
        key, value = get_args(annotation)
        return dict[key, _partial_annotation(value)]  # type: ignore[valid-type]
    if origin is Union:
        return Union[tuple(_partial_annotation(a) for a in get_args(annotation) if a is not type(None))]
    return annotation


SettingsLayer = partial(Settings)


# --- guardrails -----------------------------------------------------------------------


class Guardrail(Strict):
    """A bound a tier puts on a settings path; lower layers cannot weaken it."""

    min: int | None = None
    max: int | None = None
    equals: bool | int | str | None = None
    one_of: list[str] | None = None
    environments: list[Name] | None = Field(default=None, description="Only enforce in these environments (default: all).")
    reason: str = Field(min_length=1)


# --- file kinds -----------------------------------------------------------------------


class ChangeWindow(Strict):
    """When production changes may sync: a cron start, a duration and a time zone
    (Argo CD ``syncWindows`` semantics)."""

    schedule: str
    duration: Duration
    timezone: str = "UTC"


class Promotion(Strict):
    after: Name | None = Field(default=None, description="The environment a release must reach first.")
    requires_approval: bool = False
    reviewers: list[str] = Field(default_factory=list, description="GitHub teams that approve (org/team).")


class Previews(Strict):
    enabled: bool
    ttl_hours: int = Field(ge=1, le=720)


class AwsPlacement(Strict):
    region: AwsRegion
    dr_region: AwsRegion
    allowed_regions: list[AwsRegion]


class EnvironmentAccounts(Strict):
    shared_services: AccountId
    dr_verify: AccountId
    pools: dict[Name, AccountId] = Field(default_factory=dict, description="Account of each pooled tier's data plane.")


class SyncPolicy(Strict):
    automated: bool
    prune: bool
    self_heal: bool


class RetentionBounds(Strict):
    min_days: int = Field(ge=1)
    max_days: int = Field(ge=1)


class Environment(Strict):
    """``environments/<name>.yaml``."""

    name: Name
    description: str = ""
    aws: AwsPlacement
    accounts: EnvironmentAccounts
    domain: DomainName
    kubernetes_version: Annotated[str, StringConstraints(pattern=r"^1\.[0-9]{2}$")]
    promotion: Promotion
    change_window: ChangeWindow | None = None
    sync: SyncPolicy
    progressive_delivery: bool
    previews: Previews | None = None
    log_retention: RetentionBounds
    rpo_minutes: int = Field(ge=1)
    rto_minutes: int = Field(ge=1)
    settings: SettingsLayer = Field(default_factory=SettingsLayer)  # type: ignore[valid-type]


class InstanceClasses(Strict):
    database: list[str]
    cache: list[str]


class Tier(Strict):
    """``catalog/tiers/<name>.yaml``."""

    name: Name
    description: str = ""
    isolation: Literal["dedicated", "pooled"]
    regulated: bool = Field(
        default=False, description="Regulated data: the organisation's regulated-tenant policy rules (CO001-CO006) apply."
    )
    allowed_instance_classes: InstanceClasses
    settings: SettingsLayer = Field(default_factory=SettingsLayer)  # type: ignore[valid-type]
    guardrails: dict[str, Guardrail] = Field(default_factory=dict, description="Dotted settings path -> bound.")


class Port(Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,14}$")]
    port: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP"] = "TCP"


class Probe(Strict):
    path: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9/._-]*$")]
    port: str
    initial_delay_seconds: int = Field(default=5, ge=0, le=600)
    period_seconds: int = Field(default=10, ge=1, le=600)


class Probes(Strict):
    readiness: Probe
    liveness: Probe
    startup: Probe | None = None


class Image(Strict):
    repository: Annotated[str, StringConstraints(max_length=255, pattern=r"^[a-z0-9][a-z0-9._-]*(:[0-9]+)?(/[a-z0-9][a-z0-9._-]*)+$")]
    tag: ImageTag


class MigrationStep(Strict):
    """One schema version that matters for ordering: an ``expand`` (additive) or a
    ``contract`` (removes what the ``expands`` version made obsolete)."""

    version: int = Field(ge=1)
    kind: Literal["expand", "contract"]
    expands: int | None = Field(default=None, ge=1, description="For a contract: the version of the expand it completes.")
    description: str = ""


class Migrations(Strict):
    """How a service migrates its schema; every run is plan -> dry-run -> apply."""

    command: list[Argument] = Field(min_length=1)
    plan_args: list[Argument] = Field(default_factory=lambda: ["--plan"])
    dry_run_args: list[Argument] = Field(default_factory=lambda: ["--dry-run"])
    apply_args: list[Argument] = Field(default_factory=list)
    path: RepoPath = Field(description="Where the service's migration files live, for CI dry-runs.")
    versions: dict[Name, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, description="Schema version each environment runs; forward-only, dev >= stage >= prod."
    )
    history: list[MigrationStep] = Field(
        default_factory=list, description="Expand/contract steps that need ordering (see docs/guardrails.md)."
    )


class CanaryStep(Strict):
    weight: int = Field(ge=1, le=100)
    pause: Duration | None = None


class Analysis(Strict):
    success_rate_min: float = Field(ge=0.0, le=1.0)
    interval: Duration = "1m"
    failure_limit: int = Field(default=1, ge=0, le=10)
    prometheus_address: str = "http://prometheus.monitoring.svc:9090"


class Canary(Strict):
    steps: list[CanaryStep] = Field(min_length=1)
    analysis: Analysis


class SecretRef(Strict):
    """A value the service reads from AWS Secrets Manager through ExternalSecrets."""

    env: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]
    key: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9/_.{}-]+$")] = Field(
        description="Secrets Manager name; {tenant} and {env} are substituted."
    )
    property: str | None = None


class Ingress(Strict):
    enabled: bool
    path: str = "/"


class Service(Strict):
    """``catalog/services/<name>.yaml``."""

    name: Name
    description: str = ""
    image: Image
    chart: Name = Field(description="A chart name from catalog/platform.yaml `charts`.")
    ports: list[Port] = Field(default_factory=list)
    probes: Probes | None = None
    ingress: Ingress = Field(default_factory=lambda: Ingress(enabled=False))
    uses_database: bool = False
    secrets: list[SecretRef] = Field(default_factory=list)
    migrations: Migrations | None = None
    canary: Canary | None = None
    defaults: partial(ServiceSettings) = Field(default_factory=partial(ServiceSettings))  # type: ignore[valid-type]


class Tenant(Strict):
    """``tenants/<name>.yaml``."""

    name: Name
    tier: Name
    owner: Email
    cost_center: CostCenter
    environments: list[Name] = Field(min_length=1)
    services: list[Name] = Field(min_length=1)
    canary: bool = Field(default=False, description="Receives changes in the first progressive-sync wave.")
    accounts: dict[Name, AccountId] = Field(default_factory=dict, description="Dedicated tiers: AWS account per environment.")
    settings: SettingsLayer = Field(default_factory=SettingsLayer)  # type: ignore[valid-type]
    overrides: dict[Name, SettingsLayer] = Field(default_factory=dict)  # type: ignore[valid-type]


class Chart(Strict):
    repository: Annotated[str, StringConstraints(max_length=255, pattern=r"^(https|oci)://[A-Za-z0-9._~:/@%+-]+$")]
    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
    version: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")]


class TerraformState(Strict):
    bucket: str
    dynamodb_table: str
    region: AwsRegion
    kms_key_id: str
    account: AccountId


class Repository(Strict):
    url: Annotated[str, StringConstraints(max_length=255, pattern=r"^(https://|ssh://)[A-Za-z0-9._~:/@%+-]+$")]
    revision: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")] = "main"
    github: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")]


ActionName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")]
CronSchedule = Annotated[str, StringConstraints(pattern=r"^\S+( \S+){4}$")]


class ActionPin(Strict):
    """A GitHub Action pinned by full commit SHA; the tag is a comment for humans and bots."""

    sha: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]
    tag: str = Field(min_length=1)


class Ci(Strict):
    """How the generated GitHub Actions workflows run (``.github/workflows/``).

    Tool versions and action pins live in the catalog, not in templates, so an upgrade is
    a reviewed one-line catalog change that re-renders every workflow."""

    runner: str = "ubuntu-24.04"
    python_version: str
    terraform_version: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")]
    kubectl_version: Annotated[str, StringConstraints(pattern=r"^v[0-9]+\.[0-9]+\.[0-9]+$")]
    helm_version: Annotated[str, StringConstraints(pattern=r"^v[0-9]+\.[0-9]+\.[0-9]+$")]
    drift_schedule: CronSchedule
    restore_drill_schedule: CronSchedule
    chaos_drill_schedule: CronSchedule
    chaos_environments: list[Name] = Field(default_factory=lambda: ["dev", "stage"])
    actions: dict[ActionName, ActionPin]


class Platform(Strict):
    """``catalog/platform.yaml``: organisation-wide facts every target needs."""

    organization: Name
    repository: Repository
    terraform_state: TerraformState
    charts: dict[Name, Chart]
    secret_store: str = "aws-secrets-manager"
    ingress_class: str = "alb"
    tenant_canary_wave_size: int = Field(default=1, ge=1)
    argocd_namespace: str = Field(default="argocd", description="Where Argo CD's AppProjects and ApplicationSets live.")
    ingress_namespace: str = Field(default="kube-system", description="Namespace of the ingress controller allowed to reach service ports.")
    monitoring_namespace: str = Field(default="monitoring", description="Namespace of the Prometheus that scrapes service ports.")
    ci: Ci = Field(description="GitHub Actions settings and action pins.")
    owner: Email = Field(description="Who owns the shared control plane and pools (the `owner` tag of non-tenant infrastructure).")
    cost_center: CostCenter = Field(description="Cost center of the shared control plane and pools.")


class Waiver(Strict):
    """A time-boxed, approved exception to one policy rule for one tenant."""

    rule: Annotated[str, StringConstraints(pattern=r"^CO[0-9]{3}$")]
    tenant: Name
    environment: Name | None = Field(default=None, description="Only this environment (default: all of the tenant's).")
    reason: str = Field(min_length=10)
    approver: str = Field(min_length=3, description="Who approved it: e-mail or GitHub handle.")
    expires: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")] = Field(
        description="Last day the waiver applies (YYYY-MM-DD)."
    )


class Waivers(Strict):
    """``catalog/waivers.yaml``."""

    waivers: list[Waiver] = Field(default_factory=list)


class UsageAssumptions(Strict):
    """Monthly usage the price table cannot derive from settings, per tenant and environment."""

    nat_processed_gb: float = Field(ge=0)
    s3_stored_gb: float = Field(ge=0)
    log_ingested_gb_per_replica: float = Field(ge=0)
    egress_gb: float = Field(ge=0)


class Pricing(Strict):
    """``catalog/pricing.yaml``: list prices for the cost guard (``companyos cost``)."""

    currency: Literal["USD"] = "USD"
    hours_per_month: float = Field(default=730, gt=0)
    database_instance_hourly: dict[str, Annotated[float, Field(ge=0)]]
    database_storage_gb_month: float = Field(ge=0)
    cache_node_hourly: dict[str, Annotated[float, Field(ge=0)]]
    nat_gateway_hourly: float = Field(ge=0)
    nat_gateway_gb_processed: float = Field(ge=0)
    interface_endpoint_hourly: float = Field(ge=0, description="Per endpoint and AZ; the s3 gateway endpoint is free.")
    vcpu_hourly: float = Field(ge=0)
    memory_gb_hourly: float = Field(ge=0)
    s3_gb_month: float = Field(ge=0)
    kms_key_month: float = Field(ge=0)
    log_ingest_gb: float = Field(ge=0)
    log_storage_gb_month: float = Field(ge=0)
    egress_gb: float = Field(ge=0)
    usage: dict[Name, UsageAssumptions] = Field(description="Usage assumptions per environment; `default` for the rest.")


def _cidr(value: str) -> str:
    """A canonical, private IPv4 CIDR block (``catalog/networks.yaml``)."""
    import ipaddress

    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 CIDR block with its host bits zero ({exc})") from None
    if not net.is_private:
        raise ValueError(f"{value!r} is not a private (RFC 1918) range")
    if str(net) != value:
        raise ValueError(f"{value!r} is not in canonical form; write {str(net)!r}")
    return value


Cidr = Annotated[str, AfterValidator(_cidr)]
VpcKey = Annotated[str, StringConstraints(pattern=r"^(shared|pool-[a-z][a-z0-9-]{0,18}[a-z0-9]|tenant-[a-z][a-z0-9-]{0,18}[a-z0-9])$")]


class EnvironmentNetworks(Strict):
    """One environment's address spaces and its recorded VPC allocations."""

    primary: Cidr = Field(description="Address space of the environment's VPCs in its region.")
    dr: Cidr = Field(description="Equal-sized space for their twins in the DR region (same offsets).")
    vpcs: dict[VpcKey, Cidr] = Field(
        default_factory=dict, description="shared | pool-<tier> | tenant-<name> -> CIDR; written by `companyos allocate`."
    )


class Networks(Strict):
    """``catalog/networks.yaml``: VPC CIDR allocations (see generator/networks.py)."""

    vpc_prefix: int = Field(default=20, ge=16, le=24, description="Prefix length of pool and tenant VPCs.")
    shared_prefix: int = Field(default=16, ge=16, le=24, description="Prefix length of the shared (EKS) VPC.")
    environments: dict[Name, EnvironmentNetworks] = Field(default_factory=dict)


def annotation_at(model: type[BaseModel], path: Sequence[str | int]) -> Any:
    """The type found by following ``path`` from ``model`` through fields, dict values and
    (for integer steps) list items, Optional unwrapped; None when the path leaves the model.
    Used to check guardrail paths and to suggest keys for typos."""
    current: Any = model
    for part in path:
        current = _without_none(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                return None
            current = info.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) is list and isinstance(part, int):
            current = get_args(current)[0]
        else:
            return None
    return _without_none(current)


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        return next((arg for arg in get_args(annotation) if arg is not type(None)), annotation)
    return annotation


def is_valid_name(value: str) -> bool:
    return re.fullmatch(NAME_PATTERN, value) is not None
