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
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

import promql_parser
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema

# --- shared value types -------------------------------------------------------------

#: A tenant or environment name ends up in S3 bucket names, IAM role names, ElastiCache ids
#: (40 chars), Kubernetes namespaces and file paths; 20 characters keeps every derived
#: name inside every limit, and the pattern keeps every path inside rendered/.
NAME_PATTERN = r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
AccountId = Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]
AwsRegion = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")]
Email = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")]

#: AWS tagging rules: a key has at most 128 characters, a value at most 256, both only
#: letters, digits, spaces and ``_ . : / = + - @``. A catalog value that becomes a tag is
#: checked here, so the error points at its catalog line rather than at ``terraform apply``.
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
_TAG_CHARS = re.compile(r"^[\w .:/=+@-]*$")


def _tag_value(value: str) -> str:
    if len(value) > TAG_VALUE_MAX:
        raise ValueError(f"this value becomes an AWS tag value, which may have at most {TAG_VALUE_MAX} characters; it has {len(value)}")
    if not _TAG_CHARS.fullmatch(value):
        raise ValueError(f"{value!r} becomes an AWS tag value, which may only contain letters, digits, spaces and _ . : / = + - @")
    return value


#: An e-mail address that also becomes the ``owner`` tag of AWS resources.
TagEmail = Annotated[Email, AfterValidator(_tag_value)]


def _per_tenant_template(value: str) -> str:
    """A name template substituted per tenant and environment must contain both
    placeholders, or every tenant (environment) is pointed at the same object."""
    placeholders = re.findall(r"\{([^{}]*)\}", value)
    unknown = sorted(set(placeholders) - {"tenant", "env"})
    if unknown:
        raise ValueError(f"unknown placeholder {{{unknown[0]}}} in {value!r}; only {{tenant}} and {{env}} are substituted")
    if "{" in re.sub(r"\{[^{}]*\}", "", value) or "}" in re.sub(r"\{[^{}]*\}", "", value):
        raise ValueError(f"unbalanced '{{' or '}}' in {value!r}")
    if "tenant" not in placeholders:
        raise ValueError(f"{value!r} must contain {{tenant}}: without it every tenant would read the same secret")
    if "env" not in placeholders:
        raise ValueError(f"{value!r} must contain {{env}}: without it every environment would read the same secret (dev would read prod's)")
    return value


CostCenter = Annotated[str, StringConstraints(pattern=r"^CC-[0-9]{3,6}$")]
Quantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti)?$")]
ImageTag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
Duration = Annotated[str, StringConstraints(pattern=r"^[0-9]+(s|m|h)$")]
#: A DNS name: lowercase labels of at most 63 characters joined by dots.
DomainName = Annotated[
    str, StringConstraints(max_length=253, pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")
]
#: One argv element: printable, one line (it lands in Job specs and workflow `run:` steps).
Argument = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]+$")]
#: A repository-relative folder: segments never start with '.', so no '..', no absolute
#: paths, no spaces or control characters.
RepoPath = Annotated[str, StringConstraints(max_length=256, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$")]
#: Free-form-looking catalog strings that land in generated files get the shape of what they
#: name, so a quote, newline or '#' is refused at its catalog line, not quoted downstream.
EngineVersion = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+){0,2}$")]
DbInstanceClass = Annotated[str, StringConstraints(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")]
CacheNodeType = Annotated[str, StringConstraints(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")]
#: An IANA time zone name (Europe/Dublin, UTC, America/Argentina/Buenos_Aires, Etc/GMT+1).
TimeZoneName = Annotated[str, StringConstraints(max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9][A-Za-z0-9_+-]*)*$")]
#: A GitHub user login or an org/team slug.
GithubPrincipal = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(/[A-Za-z0-9][A-Za-z0-9_.-]{0,99})?$")]
#: Kubernetes names: a namespace (DNS-1123 label) and an object name (DNS-1123 subdomain).
K8sNamespace = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
K8sName = Annotated[str, StringConstraints(max_length=253, pattern=r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")]
#: CloudWatch Logs accepts only these retention periods.
LogRetentionDays = Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]
LOG_RETENTION_DAYS: tuple[int, ...] = get_args(LogRetentionDays)


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

    engine_version: EngineVersion
    instance_class: DbInstanceClass
    allocated_storage_gb: int = Field(ge=20, le=65536)
    max_allocated_storage_gb: int = Field(ge=20, le=65536)
    multi_az: bool
    backup_retention_days: int = Field(ge=1, le=35)
    pitr: bool
    deletion_protection: bool
    cross_region_copy: bool
    read_replicas: int = Field(ge=0, le=5)
    proxy: bool = Field(
        default=False,
        description="Connection pooling: an RDS Proxy (IAM auth, TLS) in front of the database (targets/terraform/capacity.py).",
    )


class CacheSettings(Strict):
    """ElastiCache Redis in cluster mode."""

    node_type: CacheNodeType
    shards: int = Field(ge=1, le=500)
    replicas_per_shard: int = Field(ge=0, le=5)
    snapshot_retention_days: int = Field(ge=0, le=35)
    eviction_policy: Literal[
        "volatile-lru", "allkeys-lru", "volatile-lfu", "allkeys-lfu", "volatile-random", "allkeys-random", "volatile-ttl", "noeviction"
    ] = Field(default="volatile-lru", description="Redis maxmemory-policy (the parameter group).")
    default_ttl_seconds: int = Field(
        default=3600,
        ge=0,
        le=31_536_000,
        description="TTL clients put on keys they write (Redis has no server-side default; 0: none): CACHE_DEFAULT_TTL_SECONDS.",
    )


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


class LogArchiveSettings(Strict):
    """Long-term archive of a root's CloudWatch log group to S3 through Firehose (``log_archive.tf``,
    ``targets/terraform/log_archive.py``): objects move to Glacier, then expire."""

    glacier_after_days: int = Field(
        ge=1, le=3650, description="Days after which archived log objects move to S3 Glacier Flexible Retrieval."
    )
    expire_after_days: int = Field(ge=2, le=36500, description="Days after which archived log objects are deleted.")

    @model_validator(mode="after")
    def _expires_after_the_move(self) -> LogArchiveSettings:
        """S3 rejects a lifecycle rule whose expiration is not later than its transition."""
        if self.expire_after_days <= self.glacier_after_days:
            raise ValueError(
                f"expire_after_days ({self.expire_after_days}) must be later than glacier_after_days ({self.glacier_after_days})"
            )
        return self


class LogsSettings(Strict):
    retention_days: LogRetentionDays
    archive: LogArchiveSettings | None = Field(
        default=None, description="Archive the root's log group to S3 (Glacier, then expiry); unset: no archive."
    )


class AlarmSettings(Strict):
    """CloudWatch alarm thresholds of the AWS-managed pieces (``alarms.tf`` of each data and
    tenant root, ``targets/terraform/alarms.py``); an alarm fires after ``evaluation_periods``
    five-minute periods over its threshold and notifies the root owner's alarm topic."""

    database_cpu_percent: int = Field(ge=1, le=100, description="RDS CPUUtilization (average) above this.")
    database_free_storage_gb: int = Field(ge=1, le=65536, description="RDS FreeStorageSpace (minimum) below this.")
    replica_lag_seconds: int = Field(ge=1, le=86400, description="RDS ReplicaLag (maximum) of a read replica above this.")
    cache_cpu_percent: int = Field(ge=1, le=100, description="ElastiCache EngineCPUUtilization (average) of a node above this.")
    cache_evictions: int = Field(ge=1, le=100_000_000, description="ElastiCache Evictions (sum per period) of a node above this.")
    queue_oldest_message_seconds: int = Field(ge=60, le=1209600, description="SQS ApproximateAgeOfOldestMessage above this.")
    edge_5xx_percent: float = Field(gt=0, le=100, description="CloudFront 5xxErrorRate (average) above this.")
    origin_5xx_percent: float = Field(
        default=5,
        gt=0,
        le=100,
        description="The tenant ALB's 5xx responses (its own and its targets') as a percentage of its requests above this.",
    )
    origin_latency_p99_seconds: float = Field(
        default=2.0, gt=0, le=60, description="The tenant ALB's TargetResponseTime (p99) above this many seconds."
    )
    database_connections: int = Field(
        ge=1, le=100_000, description="RDS DatabaseConnections (maximum) above this: size it below the class's max_connections."
    )
    nat_port_allocation_errors: int = Field(
        default=0, ge=0, le=1_000_000, description="NAT gateway ErrorPortAllocation (sum per period) above this: source ports exhausted."
    )
    nat_packets_dropped: int = Field(
        default=1000, ge=0, le=1_000_000_000, description="NAT gateway PacketsDropCount (sum per period) above this."
    )
    evaluation_periods: int = Field(ge=1, le=288, description="Consecutive five-minute periods over the threshold before alarming.")


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


#: An SQS queue a service owns (``Service.queues``); the full name is prefixed per tenant.
QueueName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$")]


class AutoscalingSettings(Strict):
    enabled: bool
    min_replicas: int = Field(ge=1, le=1000)
    max_replicas: int = Field(ge=1, le=1000)
    target_cpu_percent: int = Field(ge=1, le=100)
    target_memory_percent: int = Field(default=80, ge=1, le=100, description="Memory utilization target of the HPA (with the CPU one).")
    scale_to_zero: bool = Field(default=False, description="KEDA may scale the service to zero replicas while idle (its queue empty).")
    queue: QueueName | None = Field(default=None, description="One of the service's own `queues`: KEDA scales on its depth (ScaledObject).")
    messages_per_replica: int = Field(default=20, ge=1, le=100_000, description="Queue depth one replica is expected to keep up with.")


class CanarySettings(Strict):
    enabled: bool


# --- service level objectives (settings.services.<name>.slo) -----------------------------
#
# The two PromQL-shaped strings are types with their own validator rather than
# ``Annotated[str, AfterValidator]``: partial() keeps a field's type, not its validators, so a
# tier, environment or tenant layer is checked at its own line too.

#: Labels the generator sets on every SLI selector; a catalog selector must not pin them.
SLO_SCOPE_LABELS = ("namespace", "service")


@functools.lru_cache(maxsize=4096)
def _promql_selector(value: str) -> str:
    """A plain series selector (a pure function of the string: cached, since every
    deployment's resolved settings repeat the same few selectors)."""
    try:
        expr = promql_parser.parse(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not valid PromQL: {exc}") from None
    if not isinstance(expr, promql_parser.VectorSelector) or expr.offset is not None or expr.at is not None:
        raise ValueError(f"{value!r} must be a plain series selector (a metric name and matchers; no functions, ranges, offset or @)")
    if not expr.name:
        raise ValueError(f"{value!r} must name its metric")
    pinned = sorted({m.name for m in expr.matchers.matchers} & set(SLO_SCOPE_LABELS))
    if pinned:
        raise ValueError(f"{value!r} matches on {pinned[0]!r}; the generator adds the namespace and service of each tenant's workload")
    return value


@functools.lru_cache(maxsize=1024)
def _prometheus_duration(value: str) -> str:
    """``value`` when it is a Prometheus duration. Kept per value: a few distinct ones ("5m",
    "30d") recur in every tenant (~0.08 s of a load at 10,000 tenants); an error is not kept."""
    if not re.fullmatch(r"([0-9]+(ms|s|m|h|d|w|y))+", value):
        raise ValueError(f"{value!r} is not a Prometheus duration such as 5m, 1h30m or 30d")
    try:
        promql_parser.parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a Prometheus duration: {exc}") from None
    return value


class PromqlSelector(str):
    """A PromQL series selector (metric name and matchers) that parses."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_promql_selector, core_schema.str_schema(strict=True, max_length=512))


class PromDuration(str):
    """A Prometheus duration (``5m``, ``1h30m``, ``30d``), greater than zero."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_prometheus_duration, core_schema.str_schema(strict=True, max_length=32))


def duration_seconds(value: str) -> float:
    """Seconds of a validated Prometheus duration."""
    return float(promql_parser.parse_duration(value).total_seconds())


MetricName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")]


def _digest_string(value: str) -> str:
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", value):
        raise ValueError(f"{value!r} is not an image digest: 'sha256:' followed by 64 lowercase hex digits")
    return value


class DigestString(str):
    """An OCI image digest (``sha256:`` + 64 hex); a type so every settings layer checks it at its line."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_digest_string, core_schema.str_schema(strict=True, max_length=71))


class SloAvailability(Strict):
    """Availability SLI: good events over all events, from two counters."""

    objective: float = Field(gt=0, lt=100, description="Percent of events that must be good over the window (0 < objective < 100).")
    good: PromqlSelector = Field(description="Counter of good events (a PromQL selector); namespace and service matchers are added.")
    total: PromqlSelector = Field(description="Counter of all events (a PromQL selector); namespace and service matchers are added.")


class SloLatency(Strict):
    """Latency SLI: the share of requests faster than ``threshold_seconds``, from a histogram."""

    enabled: bool
    objective: float = Field(gt=0, lt=100, description="Percent of requests that must be faster than the threshold.")
    threshold_seconds: float = Field(gt=0, le=3600, description="Must be one of the histogram's bucket bounds (its `le` label).")
    histogram: MetricName = Field(description="Histogram metric name without the _bucket/_count suffix.")


class BurnRateAlert(Strict):
    """One multi-window burn-rate alert (SRE workbook ch. 5): fires when the error ratio over
    both windows exceeds ``factor`` times the error budget."""

    severity: Literal["page", "ticket"]
    long_window: PromDuration
    short_window: PromDuration
    factor: float = Field(gt=0, le=1000)

    @field_validator("short_window")
    @classmethod
    def _shorter(cls, value: str, info: Any) -> str:
        long = info.data.get("long_window")
        if long is not None and duration_seconds(value) >= duration_seconds(long):
            raise ValueError(f"short_window {value} must be shorter than long_window {long}")
        return value


class SloSettings(Strict):
    """Service level objectives; alerts (PrometheusRule) and the canary analysis derive from them."""

    enabled: bool
    window: PromDuration = Field(description="Compliance window of the error budget (Prometheus duration, e.g. 30d).")
    availability: SloAvailability
    latency: SloLatency
    burn_rate_alerts: list[BurnRateAlert] = Field(min_length=1, description="Multi-window burn-rate alerts; factors x budget < 1.")
    canary_max_burn_rate: float = Field(gt=0, le=1000, description="A canary fails when it burns the budget faster than this.")
    compare_baseline: bool = Field(description="Also fail a canary whose error ratio exceeds the stable pods' by more than the budget.")

    @model_validator(mode="after")
    def _alerts_can_fire(self) -> SloSettings:
        """An alert whose threshold is an error ratio of 1 or more can never fire."""
        objectives = [("availability", self.availability.objective)]
        if self.latency.enabled:
            objectives.append(("latency", self.latency.objective))
        for sli, objective in objectives:
            for factor in [a.factor for a in self.burn_rate_alerts] + [self.canary_max_burn_rate]:
                if factor * (100 - objective) / 100 >= 1:
                    raise ValueError(
                        f"burn rate {factor} x the {sli} budget of {100 - objective:g}% is an error ratio of 100% or more; it can never fire"
                    )
        return self


# --- metrics scraping (settings.services.<name>.metrics; Service.metrics) -----------------

#: Labels a metric relabeling may not drop: the SLI scope (``SLO_SCOPE_LABELS``), the canary's
#: pod-template hash the AnalysisTemplates select on, histogram buckets and the target identity.
#: Dropping one would merge series (a failed scrape) or blind the SLO and the canary analysis.
PROTECTED_METRIC_LABELS = (*SLO_SCOPE_LABELS, "rollouts_pod_template_hash", "le", "job", "instance", "pod", "container", "endpoint")


def _droppable_label(value: str) -> str:
    if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", value) or value.startswith("__"):
        raise ValueError(f"{value!r} is not a Prometheus label name (letters, digits and _, not starting with a digit or __)")
    if value in PROTECTED_METRIC_LABELS:
        raise ValueError(f"label {value!r} may not be dropped: the SLO rules, the canary analysis or Prometheus itself need it")
    return value


class DroppableLabel(str):
    """A Prometheus label name a ServiceMonitor may drop from every scraped series (a type with
    its own validator, so tier, environment and tenant layers are checked at their line too)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_droppable_label, core_schema.str_schema(strict=True, max_length=128))


class MetricsSettings(Strict):
    """How Prometheus scrapes a service (its ServiceMonitor): how often, and the per-target cap
    against high-cardinality costs. A scrape over ``sample_limit`` fails as a whole (``up == 0``),
    so a canary whose series explode fails its analysis instead of inflating Prometheus."""

    interval: PromDuration = Field(description="Scrape interval; a quarter of the canary analysis interval or less keeps rate() fed.")
    sample_limit: int = Field(ge=1, le=10_000_000, description="Most samples one scrape of one pod may return; more fails the scrape.")
    drop_labels: list[DroppableLabel] = Field(description="High-cardinality labels removed from every scraped series (labeldrop).")


# --- feature flags (settings.services.<name>.flags; OpenFeature FeatureFlag objects) ---------

FlagName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,62}$")]
VariantName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
VariantValue = StrictBool | StrictInt | StrictFloat | Annotated[StrictStr, StringConstraints(max_length=1024)]


class FlagRule(Strict):
    """One targeting rule of a flag. Rules are tried in order and the first whose selectors all
    match a deployment decides what it serves (an empty selector matches any): ``variant`` to
    every user, or ``rollout``, a percentage split of its users (flagd's ``fractional`` on the
    evaluation's targeting key: stable per user). A deployment no rule matches serves
    ``default_variant``; a killed flag (``state: DISABLED``) serves nothing whatever the rules say."""

    tenants: list[Name] = Field(default_factory=list, description="Tenants this rule applies to (empty: any).")
    tiers: list[Name] = Field(default_factory=list, description="Tiers this rule applies to (empty: any).")
    environments: list[Name] = Field(default_factory=list, description="Environments this rule applies to (empty: any).")
    variant: VariantName | None = Field(default=None, description="The variant every user of a matching deployment gets.")
    rollout: dict[VariantName, Annotated[int, Field(ge=0, le=100)]] | None = Field(
        default=None, description="Variant -> percentage of users (sums to 100), for a gradual exposure."
    )

    @model_validator(mode="after")
    def _one_outcome(self) -> FlagRule:
        if (self.variant is None) == (self.rollout is None):
            raise ValueError("a targeting rule serves exactly one of `variant` and `rollout`")
        if self.rollout is not None and sum(self.rollout.values()) != 100:
            raise ValueError(f"rollout percentages sum to {sum(self.rollout.values())}, not 100")
        return self

    def served_variants(self) -> list[str]:
        return [self.variant] if self.variant is not None else sorted(self.rollout or {})


class FlagSettings(Strict):
    """One feature flag served by flagd. What a deployment serves: the first ``targeting`` rule
    matching it, else ``default_variant``; any layer (tier, environment, tenant) may change
    ``default_variant`` (``companyos flag``), ``state`` or the rules for the deployments it covers."""

    variants: dict[VariantName, VariantValue] = Field(min_length=1, description="Variant name -> value (all of one JSON type).")
    default_variant: VariantName = Field(description="The variant served; must be one of `variants`.")
    state: Literal["ENABLED", "DISABLED"] = Field(description="DISABLED makes flagd answer FLAG_DISABLED: the code's default is used.")
    description: str = Field(max_length=256, description="What the flag gates (rendered as flag metadata).")
    targeting: list[FlagRule] = Field(
        default_factory=list, max_length=64, description="Rules by tenant, tier and environment; the first match decides (FlagRule)."
    )

    @field_validator("variants")
    @classmethod
    def _one_type(cls, value: dict[str, Any]) -> dict[str, Any]:
        kinds = {"number" if type(v) in (int, float) else type(v).__name__ for v in value.values()}
        if len(kinds) > 1:
            raise ValueError(f"variants mix value types ({', '.join(sorted(kinds))}); a flag has one type")
        return value

    @field_validator("default_variant")
    @classmethod
    def _default_is_a_variant(cls, value: str, info: Any) -> str:
        """Checked at ``default_variant`` so the error points at the layer that set it."""
        variants = info.data.get("variants")
        if variants is not None and value not in variants:
            raise ValueError(f"default_variant {value!r} is not one of the variants ({', '.join(sorted(variants))})")
        return value

    @field_validator("targeting")
    @classmethod
    def _rules_serve_variants(cls, value: list[FlagRule], info: Any) -> list[FlagRule]:
        """Checked at ``targeting`` so the error points at the layer that set the rules."""
        variants = info.data.get("variants")
        for i, rule in enumerate(value if variants is not None else ()):
            unknown = [v for v in rule.served_variants() if v not in variants]
            if unknown:
                raise ValueError(
                    f"targeting rule {i + 1} serves {', '.join(map(repr, unknown))}, not a variant ({', '.join(sorted(variants))})"
                )
        return value


class ServiceSettings(Strict):
    """Per-service knobs every layer may tune (``settings.services.<name>``)."""

    replicas: int = Field(ge=0, le=1000)
    resources: Resources
    autoscaling: AutoscalingSettings
    canary: CanarySettings
    slo: SloSettings
    metrics: MetricsSettings
    flags: dict[FlagName, FlagSettings]
    capacity: Literal["on-demand", "spot"] = Field(
        default="on-demand",
        description="Workload class: the Karpenter NodePool its pods go to (spot only for interruptible, non-critical work).",
    )
    #: Pins the image tag (the rollback lever); ``None`` means the service's release tag.
    image_tag: ImageTag | None
    #: The digest of the pinned tag, so a rollback is deployed by digest too (``None``: by tag).
    image_digest: DigestString | None = None


class Settings(Strict):
    """The one settings tree that every layer speaks."""

    network: NetworkSettings
    database: DatabaseSettings
    cache: CacheSettings
    storage: StorageSettings
    kms: KmsSettings
    logs: LogsSettings
    alarms: AlarmSettings
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
        for attr in ("ge", "le", "gt", "lt", "min_length", "max_length", "pattern"):
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
        return types.GenericAlias(dict, (key, _partial_annotation(value)))  # dict[key, ...] built at runtime
    if origin is Union:
        return Union[tuple(_partial_annotation(a) for a in get_args(annotation) if a is not type(None))]  # noqa: UP007 - built at runtime from a tuple
    return annotation


if TYPE_CHECKING:  # what type checkers see of the derived layer models: the fields code reads

    class ServiceSettingsLayer(Strict):
        pass

    class SettingsLayer(Strict):
        services: dict[str, ServiceSettingsLayer] | None = None

else:
    ServiceSettingsLayer = partial(ServiceSettings)
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

    #: One line of printable ASCII here; whether it is a cron schedule Argo CD can use is
    #: checked with the cron parser (model.references), which says what is wrong with it.
    schedule: Annotated[str, StringConstraints(max_length=100, pattern=r"^[ -~]+$")]
    duration: Duration
    timezone: TimeZoneName = "UTC"


class Promotion(Strict):
    after: Name | None = Field(default=None, description="The environment a release must reach first.")
    requires_approval: bool = False
    reviewers: list[GithubPrincipal] = Field(default_factory=list, description="GitHub teams that approve (org/team).")


class PreviewHours(Strict):
    """When previews run: KEDA's cron scaler keeps one replica between ``start`` and ``end``
    and none outside (idle previews scale to zero)."""

    timezone: TimeZoneName = "UTC"
    start: Annotated[str, StringConstraints(pattern=r"^[0-9*/,-]+( [0-9*/,-]+){4}$")] = "0 7 * * 1-5"
    end: Annotated[str, StringConstraints(pattern=r"^[0-9*/,-]+( [0-9*/,-]+){4}$")] = "0 19 * * 1-5"


class Previews(Strict):
    enabled: bool
    ttl_hours: int = Field(ge=1, le=720)
    awake_hours: PreviewHours | None = Field(
        default=None, description="Scale previews to zero outside these hours (needs the KEDA add-on)."
    )


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


class DisasterRecovery(Strict):
    """A warm standby of the environment in ``aws.dr_region`` (issue 15); docs/resilience.md."""

    replication: Literal["replica", "backup_replication", "snapshot_copy"] = Field(
        default="replica",
        description="How databases reach the DR region: cross-region read replica (RPO about 1 min), "
        "automated-backup replication (about 15 min) or the daily snapshot copy (24 h); rpo_minutes must be reachable.",
    )
    standby_nodes: int = Field(default=2, ge=1, le=50, description="Nodes of the scaled-down standby EKS cluster until failover.")
    standby_instance_type: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")] = "m7g.large"
    health_check_path: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9/._-]*$")] = Field(
        default="/healthz", description="Path Route53 health checks request on each public host."
    )
    region_drill_schedule: str = Field(description="Cron of the quarterly region-failover drill (UTC).")
    chaos_schedule: str = Field(description="Cron of the monthly AWS FIS chaos experiments in this environment (UTC).")
    active: bool = Field(
        default=False,
        description="Serve from the DR region: the failover workflow commits true (the standby Applications scale up "
        "to the tenants' replicas on the next render), the failback workflow false.",
    )
    active_tenants: list[Name] = Field(
        default_factory=list,
        description="Dedicated tenants of this environment served from the DR region while the rest stand by: the failover "
        "workflow run for one tenant adds it, its failback removes it. `active: true` activates every tenant regardless.",
    )


#: Best RPO (minutes) each way of reaching the DR region can promise: an asynchronous replica
#: lags seconds; replicated automated backups ship transaction logs every 5-15 minutes; the
#: daily snapshot copy loses up to a day (policy rule CO021, targets/terraform/disaster_recovery.py).
ACHIEVABLE_RPO_MINUTES: dict[str, int] = {"replica": 1, "backup_replication": 15, "snapshot_copy": 24 * 60}


class Cell(Strict):
    """One cluster ("cell") of an environment and how many tenants it may host."""

    name: Name
    max_tenants: int = Field(ge=1, description="Capacity: tenants beyond it are an error; add a cell or move tenants.")


class NodeLimits(Strict):
    """The most an environment's tenant (and spot) NodePools may grow to: a budget in the catalog,
    so the NodePools do not change when a tenant is added (CO034 checks the quotas fit)."""

    cpu: int = Field(ge=1, le=1_000_000, description="Cores per NodePool.")
    memory_gib: int = Field(ge=1, le=10_000_000, description="Memory per NodePool, GiB.")


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
    disaster_recovery: DisasterRecovery | None = Field(
        default=None, description="A warm standby in aws.dr_region with failover automation and drills (prod in the sample)."
    )
    settings: SettingsLayer = Field(default_factory=SettingsLayer)
    node_limits: NodeLimits = Field(
        default_factory=lambda: NodeLimits(cpu=2000, memory_gib=8000),
        description="Karpenter NodePool limits for tenant workloads; the tenants' namespace quotas must fit (CO034).",
    )
    cells: list[Cell] = Field(
        default_factory=list,
        description="Clusters of the environment (the first keeps the environment's cluster name); none: one cell 'main' with no limit. "
        "Tenants are assigned in catalog/networks.yaml by `companyos allocate`, moved only by `companyos move-tenant`.",
    )


class InstanceClasses(Strict):
    database: list[DbInstanceClass]
    cache: list[CacheNodeType]


class Tier(Strict):
    """``catalog/tiers/<name>.yaml``."""

    name: Name
    description: str = ""
    isolation: Literal["dedicated", "pooled"]
    regulated: bool = Field(
        default=False, description="Regulated data: the organisation's regulated-tenant policy rules (CO001-CO006) apply."
    )
    allowed_instance_classes: InstanceClasses
    spot_allowed: bool = Field(default=True, description="Whether this tier's tenants may run services on spot capacity (CO032).")
    settings: SettingsLayer = Field(default_factory=SettingsLayer)
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


#: An OCI content digest; images are deployed by digest, so a tag can never move under a release.
ImageDigest = DigestString


class ImageRelease(Strict):
    """What one environment runs: the digest it pulls, and the tag it was built as (kept as a label)."""

    tag: ImageTag
    digest: ImageDigest


class Image(Strict):
    repository: Annotated[str, StringConstraints(max_length=255, pattern=r"^[a-z0-9][a-z0-9._-]*(:[0-9]+)?(/[a-z0-9][a-z0-9._-]*)+$")]
    tag: ImageTag
    releases: dict[Name, ImageRelease] = Field(
        default_factory=dict,
        description="Per environment: the release it runs (tag and digest). The release workflow writes the first environment's; "
        "`companyos promote` copies it along the promotion chain.",
    )


class BuildTest(Strict):
    """One test command the release workflow runs before building (in the service's repository)."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,30}$")]
    run: list[Argument] = Field(min_length=1, description="argv of the command, run from the repository root.")


class ServiceBuild(Strict):
    """Where a service's image is built from (the release workflow): its source folder in this
    repository (beside its migrations) and its Dockerfile; pull requests touching it are checked."""

    context: RepoPath = Field(description="The service's source folder in this repository: the build context.")
    dockerfile: RepoPath = Field(default="Dockerfile", description="The Dockerfile, relative to the context.")
    codeql_languages: list[
        Literal["actions", "c-cpp", "csharp", "go", "java-kotlin", "javascript-typescript", "python", "ruby", "swift"]
    ] = Field(default_factory=list, description="CodeQL languages to analyse (none: no CodeQL job).")
    tests: list[BuildTest] = Field(default_factory=list, description="Unit and integration tests, run before the image is built.")


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
    """How the canary's AnalysisRun samples; what it judges (the burn rate) comes from the SLO."""

    interval: Duration = "1m"
    failure_limit: int = Field(default=1, ge=0, le=10)
    #: The Service of catalog/addons/kube-prometheus-stack.yaml (``<fullnameOverride>-prometheus``).
    prometheus_address: str = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"


class Canary(Strict):
    steps: list[CanaryStep] = Field(min_length=1)
    analysis: Analysis = Field(default_factory=Analysis)


class SecretRotation(Strict):
    """Rotation of a service's secret by a Lambda function in the tenant's account (the
    Terraform root creates ``aws_secretsmanager_secret_rotation`` pointing at it)."""

    lambda_name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = Field(
        description="Rotation Lambda function name in the tenant's account and region."
    )
    days: int = Field(default=30, ge=1, le=1000, description="Rotate automatically after this many days.")


class SecretRef(Strict):
    """A value the service reads from AWS Secrets Manager through ExternalSecrets."""

    env: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]
    key: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9/_.{}-]+$"), AfterValidator(_per_tenant_template)] = Field(
        description="Secrets Manager name; {tenant} and {env} are substituted."
    )
    property: str | None = None
    rotation: SecretRotation | None = None


class Ingress(Strict):
    enabled: bool
    path: Annotated[str, StringConstraints(max_length=256, pattern=r"^/[A-Za-z0-9/._~-]*$")] = "/"
    static_paths: list[Annotated[str, StringConstraints(max_length=255, pattern=r"^/[A-Za-z0-9/._~*-]*$")]] = Field(
        default_factory=list,
        description="CloudFront path patterns of static assets: cached and compressed at the edge (everything else is not cached).",
    )


class MetricsEndpoint(Strict):
    """Where a service exposes Prometheus metrics (``Service.metrics``): one of its ports, by name."""

    port: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,14}$")] = Field(description="Name of one of the service's `ports`.")
    path: Annotated[str, StringConstraints(max_length=256, pattern=r"^/[A-Za-z0-9/._~-]*$")] = "/metrics"


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
    uses_cache: bool = Field(default=False, description="Reads the tenant's Redis endpoint (ExternalSecret 'cache').")
    queues: list[QueueName] = Field(default_factory=list, description="SQS queues the service owns (consumes); KEDA may scale on them.")
    secrets: list[SecretRef] = Field(default_factory=list)
    migrations: Migrations | None = None
    canary: Canary | None = None
    build: ServiceBuild | None = Field(
        default=None, description="Source repository and Dockerfile: the release workflow builds, signs and records the image."
    )
    metrics: MetricsEndpoint | None = Field(
        default=None,
        description="Metrics port and path; default: the port named `metrics` (else the first port) at /metrics, scraped when an SLO is enabled.",
    )
    defaults: ServiceSettingsLayer = Field(default_factory=ServiceSettingsLayer)

    @field_validator("metrics")
    @classmethod
    def _metrics_port_exists(cls, value: MetricsEndpoint | None, info: Any) -> MetricsEndpoint | None:
        ports = [p.name for p in info.data.get("ports") or ()]
        if value is not None and value.port not in ports:
            raise ValueError(f"metrics port {value.port!r} is not one of the service's ports ({', '.join(ports) or 'none declared'})")
        return value

    def metrics_endpoint(self) -> MetricsEndpoint | None:
        """The declared endpoint, else the port named ``metrics`` or the first port at /metrics;
        None without ports (nothing to scrape)."""
        if self.metrics is not None:
            return self.metrics
        names = [p.name for p in self.ports]
        if not names:
            return None
        return MetricsEndpoint(port="metrics" if "metrics" in names else names[0])


class Tenant(Strict):
    """``tenants/<name>.yaml``."""

    name: Name
    tier: Name
    owner: TagEmail
    cost_center: CostCenter
    environments: list[Name] = Field(min_length=1)
    services: list[Name] = Field(min_length=1)
    canary: bool = Field(default=False, description="Receives changes in the first progressive-sync wave.")
    accounts: dict[Name, AccountId] = Field(default_factory=dict, description="Dedicated tiers: AWS account per environment.")
    vended_accounts: dict[Name, AccountId] = Field(
        default_factory=dict,
        description="Ids AWS assigned to the accounts the org root vended (output tenant_<name>_account_ids); written by `companyos record-accounts`.",
    )
    settings: SettingsLayer = Field(default_factory=SettingsLayer)
    overrides: dict[Name, SettingsLayer] = Field(default_factory=dict)


class Chart(Strict):
    repository: Annotated[str, StringConstraints(max_length=255, pattern=r"^(https|oci)://[A-Za-z0-9._~:/@%+-]+$")]
    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
    version: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")]


class TerraformState(Strict):
    bucket: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    dynamodb_table: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{3,255}$")]
    region: AwsRegion
    kms_key_id: Annotated[str, StringConstraints(max_length=2048, pattern=r"^[A-Za-z0-9][A-Za-z0-9:/_.-]*$")]
    account: AccountId


class Repository(Strict):
    url: Annotated[str, StringConstraints(max_length=255, pattern=r"^(https://|ssh://)[A-Za-z0-9._~:/@%+-]+$")]
    revision: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")] = "main"
    github: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")]


#: ``owner/repo``, or ``owner/repo/path`` for an action in a subfolder (``github/codeql-action/init``).
ActionName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")]
CronSchedule = Annotated[str, StringConstraints(pattern=r"^\S+( \S+){4}$")]


class ActionPin(Strict):
    """A GitHub Action pinned by full commit SHA; the tag is a comment for humans and bots."""

    sha: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]
    tag: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/+-]{0,99}$")] = Field(
        description="The release the sha is, for humans and Dependabot (it lands in a YAML comment)."
    )


class Ci(Strict):
    """How the generated GitHub Actions workflows run (``.github/workflows/``).

    Tool versions and action pins live in the catalog, not in templates, so an upgrade is
    a reviewed one-line catalog change that re-renders every workflow."""

    runner: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")] = Field(
        default="ubuntu-24.04", description="A runner label (GitHub-hosted image or self-hosted label)."
    )
    python_version: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,31}$")]
    terraform_version: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")]
    kubectl_version: Annotated[str, StringConstraints(pattern=r"^v[0-9]+\.[0-9]+\.[0-9]+$")]
    helm_version: Annotated[str, StringConstraints(pattern=r"^v[0-9]+\.[0-9]+\.[0-9]+$")]
    drift_schedule: CronSchedule
    restore_drill_schedule: CronSchedule
    chaos_drill_schedule: CronSchedule
    chaos_environments: list[Name] = Field(default_factory=lambda: ["dev", "stage"])
    actions: dict[ActionName, ActionPin]
    conftest_version: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")] = Field(
        default="0.68.2", description="Conftest release the terraform workflow runs the rendered Rego policies with."
    )
    conftest_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] = Field(
        default="e8144c6d6d2ae0260b869caa60c7c262a1f95ac63ec1e5d2fb19be452d606347",
        description="SHA-256 of conftest_<version>_Linux_x86_64.tar.gz (the release's checksums.txt).",
    )


#: The psql image digest of the sample's engine version (public.ecr.aws mirror of Docker Hub's library/postgres).
POSTGRES_16_4_DIGEST = "sha256:9a2f3b8137068178039fcf7769a760b700a4c09460c502bcd18cae8a7484af65"


class PostgresClient(Strict):
    """The psql image the platform's own Jobs run (pool bootstrap, DR integrity recorder): pulled
    by digest, one per PostgreSQL engine version in use (policy CO040), so a re-tagged upstream
    image never changes what runs against a production database."""

    repository: Annotated[str, StringConstraints(max_length=255, pattern=r"^[a-z0-9][a-z0-9._/-]*[a-z0-9]$")] = (
        "public.ecr.aws/docker/library/postgres"
    )
    digests: dict[EngineVersion, Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]] = Field(
        default_factory=lambda: {"16.4": POSTGRES_16_4_DIGEST},
        description="engine version -> the manifest digest of <repository>:<version>.",
    )

    def pinned(self, version: str) -> bool:
        return version in self.digests

    def image(self, version: str) -> str:
        """``<repository>:<version>@<digest>``; the bare tag only where policy CO040 has not run
        (a render of an old ref), since a rendered tree that passed policy always has the digest."""
        digest = self.digests.get(version)
        return f"{self.repository}:{version}@{digest}" if digest else f"{self.repository}:{version}"

    def upstream_registry(self) -> str:
        """The registry host of ``repository``: the upstream of an ECR pull-through cache."""
        return self.repository.split("/", 1)[0]

    def cached_image(self, version: str, cache: str) -> str:
        """:meth:`image` pulled through the ECR pull-through cache ``cache``
        (``<account>.dkr.ecr.<region>.amazonaws.com/<prefix>``): the same path under it and the
        same digest, so the same bytes run, from a VPC with no route to the internet."""
        return f"{cache}/{self.image(version).split('/', 1)[1]}"


class OrgAccounts(Strict):
    """How the organization root names the accounts it vends and adopts."""

    email_pattern: Annotated[str, StringConstraints(max_length=200, pattern=r"^[A-Za-z0-9._%+{}-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")] = Field(
        description="Root e-mail of each account; {org}, {tenant} and {env} are replaced (platform accounts use their role as tenant)."
    )


class AwsOrganization(Strict):
    """``aws_organization`` in catalog/platform.yaml: the organization root (rendered/terraform/org)."""

    log_archive_account: AccountId = Field(description="The account the organization's logs are archived in.")
    audit_account: AccountId = Field(description="The security tooling (delegated administrator) account.")
    accounts: OrgAccounts
    required_tags: list[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,62}$")]] = Field(
        default_factory=lambda: ["tenant", "environment", "owner", "cost-center"],
        min_length=1,
        description="Tags the SCP, the tag policy and the Rego plan policies require on the core resources.",
    )


class Platform(Strict):
    """``catalog/platform.yaml``: organisation-wide facts every target needs."""

    organization: Name
    repository: Repository
    terraform_state: TerraformState
    charts: dict[Name, Chart]
    secret_store: K8sName = "aws-secrets-manager"
    ingress_class: K8sName = "alb"
    tenant_canary_wave_size: int = Field(default=1, ge=1)
    argocd_namespace: K8sNamespace = Field(default="argocd", description="Where Argo CD's AppProjects and ApplicationSets live.")
    ingress_namespace: K8sNamespace = Field(
        default="kube-system", description="Namespace of the ingress controller allowed to reach service ports."
    )
    monitoring_namespace: K8sNamespace = Field(default="monitoring", description="Namespace of the Prometheus that scrapes service ports.")
    ci: Ci = Field(description="GitHub Actions settings and action pins.")
    owner: TagEmail = Field(description="Who owns the shared control plane and pools (the `owner` tag of non-tenant infrastructure).")
    cost_center: CostCenter = Field(description="Cost center of the shared control plane and pools.")
    management_account: AccountId | None = Field(
        default=None, description="The organization's management account (applies rendered/terraform/org)."
    )
    aws_organization: AwsOrganization | None = Field(default=None, description="OUs, accounts and guardrails of the organization root.")
    postgres_client: PostgresClient = Field(
        default_factory=PostgresClient, description="psql image by digest for the platform's own database Jobs."
    )


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


class AdmissionWaiver(Strict):
    """A time-boxed exception to one admission policy (Kyverno) for one tenant's namespace:
    rendered as a PolicyException, refused once expired."""

    policy: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,62}$")] = Field(
        description="An admission policy name (generator/model/admission.py POLICIES)."
    )
    tenant: Name
    environment: Name | None = Field(default=None, description="Only this environment (default: all of the tenant's).")
    reason: str = Field(min_length=10, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")
    approver: str = Field(
        min_length=3, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$", description="Who approved it: e-mail or GitHub handle."
    )
    expires: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")] = Field(
        description="Last day the waiver applies (YYYY-MM-DD)."
    )


class Waivers(Strict):
    """``catalog/waivers.yaml``."""

    waivers: list[Waiver] = Field(default_factory=list)
    admission: list[AdmissionWaiver] = Field(default_factory=list, description="Exceptions to admission policies (PolicyExceptions).")


class UsageAssumptions(Strict):
    """Monthly usage the price table cannot derive from settings, per tenant and environment."""

    nat_processed_gb: float = Field(ge=0)
    s3_stored_gb: float = Field(ge=0)
    log_ingested_gb_per_replica: float = Field(ge=0)
    egress_gb: float = Field(ge=0)
    requests_k: float = Field(
        default=0, ge=0, description="Thousands of requests a tenant serves a month: the unit of the unit cost (0: none)."
    )
    idle_share: float = Field(default=0, ge=0, le=1, description="Share of the month a scale-to-zero service sits at zero replicas.")
    log_archive_months: float = Field(default=0, ge=0, description="Months exported logs stay in S3 Glacier after their retention.")


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
    spot_discount_percent: float = Field(default=0, ge=0, lt=100, description="Average spot discount on compute of spot services.")
    karpenter_utilization_percent: float = Field(
        default=100, gt=0, le=100, description="Share of node capacity pods request once Karpenter consolidates; compute is divided by it."
    )
    rds_proxy_vcpu_hourly: float = Field(default=0, ge=0, description="RDS Proxy price per vCPU of the target instance (at least 2).")
    database_instance_vcpus: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="vCPUs of each instance class."
    )
    log_archive_gb_month: float = Field(default=0, ge=0, description="Exported logs in S3 Glacier, per GB-month.")
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
VpcKey = Annotated[
    str, StringConstraints(pattern=r"^(shared|restore-drill|pool-[a-z][a-z0-9-]{0,18}[a-z0-9]|tenant-[a-z][a-z0-9-]{0,18}[a-z0-9])$")
]
#: An EC2 security group id: the VPC resource controller accepts nothing else (docs/isolation.md).
SecurityGroupId = Annotated[str, StringConstraints(pattern=r"^sg-[0-9a-f]{8,17}$")]


class EnvironmentNetworks(Strict):
    """One environment's address spaces and its recorded VPC allocations."""

    primary: Cidr = Field(description="Address space of the environment's VPCs in its region.")
    dr: Cidr = Field(description="Equal-sized space for their twins in the DR region (same offsets).")
    vpcs: dict[VpcKey, Cidr] = Field(
        default_factory=dict,
        description="shared | pool-<tier> | tenant-<name> | restore-drill -> CIDR; written by `companyos allocate`. restore-drill (environments with disaster_recovery): only its DR twin is used, by the restore drill's VPC in the dr-verify account.",
    )
    pod_security_groups: dict[Name, SecurityGroupId] = Field(
        default_factory=dict,
        description="tenant -> id of its pod security group (shared root output pod_security_group_ids); written by `companyos record-pod-groups`.",
    )
    pool_admin_security_group: SecurityGroupId | None = Field(
        default=None,
        description="Id of the pools' bootstrap Jobs' security group (shared root output pool_admin_security_group_id); written by `companyos record-pod-groups`.",
    )
    cells: dict[Name, Name] = Field(
        default_factory=dict,
        description="tenant -> cell it runs in (environments with several cells); written by `companyos allocate`, changed only by `companyos move-tenant`.",
    )


class RetiredAccount(Strict):
    """An account of a removed tenant: still in the organization (OU ``suspended``, deny-all SCP)
    until a human closes it; name and e-mail as created, so the org plan only moves it."""

    tenant: Name
    environment: Name
    account: AccountId | None = Field(default=None, description="Its id when known (adopted, or recorded by record-accounts).")
    name: Annotated[str, StringConstraints(min_length=1, max_length=50)]
    email: Email
    owner: TagEmail
    cost_center: CostCenter


class RetiredAccounts(Strict):
    """``catalog/retired-accounts.yaml``: written by ``companyos remove-tenant``; an entry goes
    once its account is closed and removed from the org root's state (docs/governance.md)."""

    accounts: list[RetiredAccount] = Field(default_factory=list)


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


# --- platform add-ons (catalog/addons/*.yaml) -------------------------------------------------

#: An exact chart version: Argo CD would accept a range, which makes a render non-reproducible.
ExactSemver = Annotated[str, StringConstraints(pattern=r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")]
ChartRepository = Annotated[
    str, StringConstraints(max_length=256, pattern=r"^(https|oci)://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)*/?$")
]
#: ``group/Kind`` as a CRD defines it (``argoproj.io/Rollout``).
#: Helm chart versions are exact; some charts (cert-manager, the OpenFeature operator) publish theirs with a ``v``.
ChartVersion = Annotated[str, StringConstraints(pattern=r"^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")]
CrdKind = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?/[A-Z][A-Za-z0-9]*$")]
#: Placeholders an add-on's IAM resources and values may use, filled per environment.
ADDON_PLACEHOLDERS = ("region", "account", "env", "zone_id", "cluster", "org", "domain")


def _iam_action(value: str) -> str:
    """One IAM action; a wildcard over a whole service (``*``, ``s3:*``) is never least privilege."""
    service, _, action = value.partition(":")
    if value == "*" or action == "*":
        raise ValueError(
            f"{value!r} grants every action of {'every service' if value == '*' else service}; list the actions the add-on needs"
        )
    if not re.fullmatch(r"[a-z0-9-]+", service) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*\*?", action):
        raise ValueError(f"{value!r} is not an IAM action (service:Action)")
    return value


IamAction = Annotated[str, AfterValidator(_iam_action)]


class IamCondition(Strict):
    """One condition of a policy statement, as the IAM module takes it."""

    test: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]+$")] = Field(
        description="Condition operator: StringEquals, StringLike, Null, ..."
    )
    variable: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9:/._{}-]+$")]
    values: list[Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\"\\$]+$")]] = Field(min_length=1)


class IamStatement(Strict):
    """One Allow statement of an add-on's IRSA policy; resources may use the placeholders
    {region} {account} {env} {zone_id} {cluster} {org} {domain}."""

    sid: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9]{0,63}$")]
    actions: list[IamAction] = Field(min_length=1)
    resources: list[Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f\"\\$]+$")]] = Field(min_length=1)
    conditions: list[IamCondition] = Field(default_factory=list)


class AddonBucket(Strict):
    """An S3 bucket of an add-on in the shared root (encrypted, private, its lifecycle here); the
    add-on's IRSA role may read and write it, nothing else may. Helm values name it
    ``{bucket_<name>}``."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z]{1,12}$")] = Field(
        description="Short name; the bucket is <org>-<env>-<addon>-<name>-<account>."
    )
    expire_after_days: int = Field(
        ge=1, le=3650, description="Objects are deleted after this many days (a backstop behind the add-on's own retention)."
    )
    glacier_after_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Move objects to Glacier Flexible Retrieval after this many days (archives only: an add-on cannot read Glacier).",
    )


class AddonChart(Strict):
    repository: ChartRepository = Field(description="Helm repository: an https URL or oci://.")
    name: K8sName
    version: ChartVersion = Field(description="Exact chart version X.Y.Z as the chart publishes it (some prefix a v); no ranges.")


#: Add-on names are chart-like (``aws-load-balancer-controller``): longer than tenant names,
#: still a DNS label; the IRSA role name's 64-character limit is checked in model.addons.
AddonName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")]


class Addon(Strict):
    """``catalog/addons/<name>.yaml``: a cluster add-on installed before any tenant workload."""

    name: AddonName
    description: str = Field(default="", max_length=256)
    chart: AddonChart
    namespace: K8sNamespace
    sync_wave: int = Field(ge=-100, le=-3, description="Argo CD sync wave; tenants sync at -1 and later, so add-ons are at most -3.")
    values: dict[str, Any] = Field(default_factory=dict, description="Helm values; strings may use the same placeholders as IAM resources.")
    service_account: K8sName | None = Field(
        default=None, description="Service account that gets an IRSA role (set as the chart's serviceAccount.name and annotated)."
    )
    iam_policy: list[IamStatement] = Field(
        default_factory=list, description="Statements of the IRSA role's policy (needs service_account)."
    )
    provides_crds: list[CrdKind] = Field(default_factory=list, description="CRD kinds (group/Kind) this add-on installs.")
    requires_crds: list[CrdKind] = Field(
        default_factory=list, description="CRD kinds the chart's own objects use (another add-on must provide them)."
    )
    environments: list[Name] | None = Field(default=None, description="Only install in these environments (default: all).")
    environment_values: dict[Name, dict[str, Any]] = Field(
        default_factory=dict, description="Helm values merged over `values` in one environment (replicas in prod, say)."
    )
    buckets: list[AddonBucket] = Field(default_factory=list, description="S3 buckets the add-on stores in (needs service_account).")
