"""The cost guard (FinOps scorecard): monthly cost per tenant and environment.

``companyos cost [--base REF] [--max-increase PCT]`` prices every deployment's resolved settings
with ``catalog/pricing.yaml`` and, against a base ref, fails (exit 1) when a tenant's monthly
total rises by more than PCT percent. The estimate is stated in one place (:func:`estimate`) so
a reviewer can redo it by hand; docs/guardrails.md ("Cost guard") spells it out. Pure: the
model and the price table in, numbers out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from generator import pipeline
from generator.catalog import spec
from generator.errors import CatalogError, CatalogErrors, Location, UsageError
from generator.model.ci import DEFAULT_MAX_INCREASE
from generator.model.resolve import Deployment, Model

PRICING_PATH = "catalog/pricing.yaml"
#: The render-check gate: a tenant's cost per declared unit may rise this much (percent).
DEFAULT_MAX_UNIT_INCREASE = 10.0
#: How many parts a unit-cost regression names as its top contributors.
TOP_CONTRIBUTORS = 3

_UNITS = {"": 1.0, "m": 0.001, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40}


def cpu(quantity: str) -> float:
    """Kubernetes CPU quantity in cores: ``250m`` -> 0.25."""
    return _quantity(quantity)


def memory_gib(quantity: str) -> float:
    """Kubernetes memory quantity in GiB: ``256Mi`` -> 0.25."""
    return _quantity(quantity) / 2.0**30


def _quantity(quantity: str) -> float:
    """A Kubernetes quantity as a plain number (``250m`` -> 0.25, ``1Gi`` -> 2**30); the
    spec's pattern has already refused anything else."""
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", quantity)
    assert match is not None, f"not a Kubernetes quantity: {quantity!r}"
    number, unit = match.groups()
    return float(number) * _UNITS[unit]


@dataclass(frozen=True)
class Estimate:
    tenant: str
    environment: str
    #: Component -> USD per month, before rounding.
    parts: dict[str, float]
    budget: int
    #: What each capacity lever adds (+) or saves (-) in USD per month; already in ``parts``.
    levers: dict[str, float] = field(default_factory=dict)
    #: Declared units a month (thousands of requests); 0 when the usage names none.
    units: float = 0.0

    @property
    def total(self) -> float:
        return round(sum(self.parts.values()), 2)

    @property
    def unit_cost(self) -> float | None:
        return round(self.total / self.units, 4) if self.units else None


def _price(table: dict[str, float], key: str, what: str, where: Location) -> float:
    if key not in table:
        raise CatalogErrors([CatalogError(where, f"no price for {what} '{key}' in {PRICING_PATH}")])
    return table[key]


def estimate(model: Model, pricing: spec.Pricing, pricing_at: Any = None) -> list[Estimate]:
    """Monthly estimate of every deployment (see the module docstring for the formula)."""
    pool_sizes: dict[tuple[str, str], int] = {}
    for d in model.deployments:
        if not d.dedicated:
            pool_sizes[(d.tier.name, d.env)] = pool_sizes.get((d.tier.name, d.env), 0) + 1
    missing: list[CatalogError] = []
    out = []
    for d in model.deployments:
        try:
            out.append(_estimate(d, pricing, 1 if d.dedicated else pool_sizes[(d.tier.name, d.env)], pricing_at))
        except CatalogErrors as exc:
            missing.extend(exc.errors)
    if missing:
        raise CatalogErrors(missing)
    return out


def _estimate(d: Deployment, p: spec.Pricing, pool_size: int, pricing_at: Any) -> Estimate:
    def locate(*keys: str) -> Location:
        return pricing_at.locate(*keys, key=True) if pricing_at is not None else Location(PRICING_PATH)

    s, hours = d.settings, p.hours_per_month
    usage = p.usage.get(d.env) or p.usage.get("default")
    if usage is None:
        raise CatalogErrors(
            [CatalogError(locate("usage"), f"no usage assumptions for environment '{d.env}' and no 'default' in {PRICING_PATH}")]
        )
    db = s.database
    copies = (2 if db.multi_az else 1) + db.read_replicas
    database = (
        _price(p.database_instance_hourly, db.instance_class, "database instance class", locate("database_instance_hourly"))
        * hours
        * copies
        + db.allocated_storage_gb * p.database_storage_gb_month * copies
    )
    cache = (
        _price(p.cache_node_hourly, s.cache.node_type, "cache node type", locate("cache_node_hourly"))
        * hours
        * s.cache.shards
        * (1 + s.cache.replicas_per_shard)
    )
    nat_count = s.network.az_count if s.network.nat_gateways == "per_az" else 1
    interface_endpoints = sum(1 for e in s.network.vpc_endpoints if e != "s3")
    network = (
        nat_count * p.nat_gateway_hourly * hours
        + usage.nat_processed_gb * p.nat_gateway_gb_processed
        + interface_endpoints * s.network.az_count * p.interface_endpoint_hourly * hours
    )
    replicas = 0.0
    compute = 0.0
    levers: dict[str, float] = {}

    def lever(name: str, amount: float) -> None:
        if amount:
            levers[name] = levers.get(name, 0.0) + amount

    for _name, svc in sorted(s.services.items()):
        count: float = svc.autoscaling.min_replicas if svc.autoscaling.enabled else svc.replicas
        requests = svc.resources.requests
        per_replica = (cpu(requests.cpu) * p.vcpu_hourly + memory_gib(requests.memory) * p.memory_gb_hourly) * hours
        if svc.autoscaling.enabled and svc.autoscaling.scale_to_zero:
            lever("scale_to_zero", -count * usage.idle_share * per_replica)
            count *= 1 - usage.idle_share
        replicas += count
        amount = count * per_replica
        if svc.capacity == "spot":
            lever("spot", -amount * p.spot_discount_percent / 100)
            amount *= 1 - p.spot_discount_percent / 100
        compute += amount
    # Karpenter bin-packs and consolidates, but nodes are never fully requested: the idle rest is paid too.
    packing = 100 / p.karpenter_utilization_percent
    for saving in ("spot", "scale_to_zero"):  # savings are of node capacity, idle rest included
        if saving in levers:
            levers[saving] *= packing
    lever("consolidation_headroom", compute * (packing - 1))
    compute *= packing
    ingested = replicas * usage.log_ingested_gb_per_replica
    share = 1.0 / pool_size
    if db.read_replicas:
        per_copy = database / copies
        lever("read_replicas", per_copy * db.read_replicas * share)
    proxy = 0.0
    if db.proxy:
        vcpus = max(2, p.database_instance_vcpus.get(db.instance_class, 2))
        proxy = vcpus * p.rds_proxy_vcpu_hourly * hours * (2 if db.multi_az else 1)
        lever("rds_proxy", proxy * share)
    archive = ingested * usage.log_archive_months * p.log_archive_gb_month
    lever("log_archive", archive)
    parts = {
        "database": database * share,
        "cache": cache * share,
        "network": network * share,
        "compute": compute,
        "storage": usage.s3_stored_gb * p.s3_gb_month,
        "kms": p.kms_key_month,
        "logs": ingested * p.log_ingest_gb + ingested * s.logs.retention_days / 30 * p.log_storage_gb_month,
        "egress": usage.egress_gb * p.egress_gb,
    }
    # Parts a lever adds appear only while it is on (a catalog without them prices as before).
    if proxy:
        parts["db_proxy"] = proxy * share
    if archive:
        parts["logs_archive"] = archive
    return Estimate(d.name, d.env, parts, s.budget.monthly_usd, levers, usage.requests_k)


def pricing_of(model: Model) -> tuple[spec.Pricing, Any]:
    entry = model.catalog.single("pricing")
    if entry is None:
        raise UsageError(f"{PRICING_PATH} is missing: the cost guard needs a price table")
    infinite = [
        CatalogError(entry.locate(*keypath), f"{'.'.join(map(str, keypath))}: a price must be a finite number, got {value}")
        for keypath, value in _non_finite(entry.doc.data)
    ]
    if infinite:
        raise CatalogErrors(infinite)
    return entry.spec, entry


def _non_finite(data: Any, keypath: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], float]]:
    """Every ``.inf`` or ``.nan`` in a parsed file, with its key path."""
    if isinstance(data, float):
        return [] if math.isfinite(data) else [(keypath, data)]
    if isinstance(data, dict):
        return [found for key, value in data.items() for found in _non_finite(value, (*keypath, key))]
    if isinstance(data, list):
        return [found for index, value in enumerate(data) for found in _non_finite(value, (*keypath, index))]
    return []


# --- comparison ------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    tenant: str
    environment: str | None  # None: the tenant's total over its environments
    base: float | None
    current: float | None
    budget: int | None = None
    #: False when there is no base to compare with (no "new"/"removed" status then).
    compared: bool = True

    @property
    def change(self) -> float:
        return round((self.current or 0.0) - (self.base or 0.0), 2)

    @property
    def change_percent(self) -> float | None:
        if not self.base or self.current is None:
            return None
        return round(100.0 * (self.current - self.base) / self.base, 1)

    @property
    def status(self) -> str:
        if not self.compared:
            return ""
        if self.base is None and self.current is not None:
            return "new"
        if self.current is None:
            return "removed"
        return ""

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data: every number finite. A number that is not (an
        overflowing estimate, a rise from a base of 0) is null, and ``undefined`` says why."""
        out: dict[str, Any] = {**asdict(self), "change": self.change, "change_percent": self.change_percent, "status": self.status}
        why: dict[str, str] = {}
        for key in ("base", "current", "budget", "change", "change_percent"):
            value = out[key]
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
                why[key] = "not a finite number: the estimate overflows (check the prices in catalog/pricing.yaml)"
        if "change_percent" not in why and out["change_percent"] is None and self.compared and self.current is not None:
            if self.base is None:
                why["change_percent"] = "no base cost: the deployment is new"
            elif self.base == 0:
                why["change_percent"] = "the base cost is 0: a rise from 0 has no percentage"
        out["undefined"] = why
        return out


@dataclass(frozen=True)
class UnitRow:
    """A tenant's monthly cost per declared unit (all its environments), and what moved it."""

    tenant: str
    base: float | None
    current: float | None
    #: (part, change in USD per month) of the largest rises, largest first.
    contributors: tuple[tuple[str, float], ...] = ()

    @property
    def change_percent(self) -> float | None:
        if not self.base or self.current is None:
            return None
        return round(100.0 * (self.current - self.base) / self.base, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "base": self.base,
            "current": self.current,
            "change_percent": self.change_percent,
            "contributors": [{"part": part, "change": round(change, 2)} for part, change in self.contributors],
        }


@dataclass
class CostReport:
    base: str | None
    max_increase: float
    tenants: list[Row] = field(default_factory=list)
    deployments: list[Row] = field(default_factory=list)
    #: Why the base could not be compared, if it could not.
    note: str | None = None
    max_unit_increase: float = DEFAULT_MAX_UNIT_INCREASE
    units: list[UnitRow] = field(default_factory=list)
    #: Lever -> USD per month over every deployment (negative: a saving).
    levers: dict[str, float] = field(default_factory=dict)

    @property
    def unit_exceeded(self) -> list[UnitRow]:
        """Tenants whose cost per unit rose by more than :attr:`max_unit_increase` percent."""
        if self.base is None:
            return []
        return [u for u in self.units if u.change_percent is not None and u.change_percent > self.max_unit_increase]

    @property
    def exceeded(self) -> list[Row]:
        """Tenants whose monthly total rose by more than :attr:`max_increase` percent."""
        if self.base is None:
            return []
        return [r for r in self.tenants if r.change_percent is not None and r.change_percent > self.max_increase]

    def as_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "max_increase_percent": self.max_increase,
            "tenants": [r.as_dict() for r in self.tenants],
            "deployments": [r.as_dict() for r in self.deployments],
            "exceeded": [r.tenant for r in self.exceeded],
            "note": self.note,
            "max_unit_increase_percent": self.max_unit_increase,
            "unit_costs": [u.as_dict() for u in self.units],
            "unit_exceeded": [u.tenant for u in self.unit_exceeded],
            "levers": {k: round(v, 2) for k, v in sorted(self.levers.items())},
        }


def _by_change(row: Row) -> tuple[float, float, str, str]:
    return (-row.change, -(row.change_percent or 0.0), row.tenant, row.environment or "")


def compare(current: list[Estimate], base: list[Estimate] | None, base_ref: str | None, max_increase: float) -> CostReport:
    """Rows per deployment and per tenant, sorted by change (largest rise first)."""
    now = {(e.tenant, e.environment): e for e in current}
    before = {(e.tenant, e.environment): e for e in base or []}
    report = CostReport(base_ref, max_increase)
    for key in sorted(set(now) | set(before)):
        cur, old = now.get(key), before.get(key)
        report.deployments.append(
            Row(key[0], key[1], old.total if old else None, cur.total if cur else None, cur.budget if cur else None, base is not None)
        )
    now_by, before_by = _by_tenant(now.values()), _by_tenant(before.values())
    for tenant in sorted({*now_by, *before_by}):
        cur_rows, old_rows = now_by.get(tenant, []), before_by.get(tenant, [])
        report.tenants.append(
            Row(
                tenant,
                None,
                round(sum(e.total for e in old_rows), 2) if old_rows else None,
                round(sum(e.total for e in cur_rows), 2) if cur_rows else None,
                sum(e.budget for e in cur_rows) if cur_rows else None,
                base is not None,
            )
        )
    report.deployments.sort(key=_by_change)
    report.tenants.sort(key=_by_change)
    report.units = unit_rows(current, base)
    for e in current:
        for name, amount in e.levers.items():
            report.levers[name] = report.levers.get(name, 0.0) + amount
    return report


def _by_tenant(rows: Iterable[Estimate]) -> dict[str, list[Estimate]]:
    """``rows`` grouped by tenant, each group in the order given (one pass: picking each
    tenant's rows out of all of them was quadratic, minutes at 10,000 tenants x 3)."""
    out: dict[str, list[Estimate]] = {}
    for e in rows:
        out.setdefault(e.tenant, []).append(e)
    return out


def _unit_cost(rows: list[Estimate]) -> float | None:
    units = sum(e.units for e in rows)
    return round(sum(e.total for e in rows) / units, 4) if units else None


def unit_rows(current: list[Estimate], base: list[Estimate] | None) -> list[UnitRow]:
    """Per tenant with declared units: cost per unit now and at the base, and the parts whose
    monthly cost rose most (the contributors a regression names)."""
    out = []
    current_by, base_by = _by_tenant(current), _by_tenant(base or [])
    for tenant in sorted(current_by):
        now, before = current_by[tenant], base_by.get(tenant, [])
        cur = _unit_cost(now)
        if cur is None:
            continue
        changes: dict[str, float] = {}
        for e in now:
            for part, amount in e.parts.items():
                changes[part] = changes.get(part, 0.0) + amount
        for e in before:
            for part, amount in e.parts.items():
                changes[part] = changes.get(part, 0.0) - amount
        top = sorted(((p, c) for p, c in changes.items() if c > 0.005), key=lambda pc: (-pc[1], pc[0]))[:TOP_CONTRIBUTORS]
        out.append(UnitRow(tenant, _unit_cost(before) if before else None, cur, tuple(top)))
    return out


def run(
    model: Model,
    base_model: Model | None = None,
    base_ref: str | None = None,
    max_increase: float = DEFAULT_MAX_INCREASE,
    max_unit_increase: float = DEFAULT_MAX_UNIT_INCREASE,
) -> CostReport:
    """Estimate ``model`` (and the base, priced with its own table when it has one)."""
    pricing, entry = pricing_of(model)
    current = estimate(model, pricing, entry)
    base = None
    if base_model is not None:
        base_entry = base_model.catalog.single("pricing")
        base_pricing = base_entry.spec if base_entry is not None else pricing
        base = estimate(base_model, base_pricing, base_entry)
    report = compare(current, base, base_ref, max_increase)
    report.max_unit_increase = max_unit_increase
    return report


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def format_text(report: CostReport) -> str:
    """Two tables: tenants (what the threshold applies to), then tenant x environment.
    Without a base there is nothing to compare, so only the estimate and budget columns."""
    compared = report.base is not None
    lines = []
    header = (
        f"{'tenant':<20} {'environment':<12} "
        + (f"{'base':>12} " if compared else "")
        + f"{'current':>12} "
        + (f"{'change':>11} {'%':>7} " if compared else "")
        + f"{'budget':>10}  note"
    )
    # asked once: each is a pass over every row (asked per row, 40,000 rows at 10,000 tenants x 3 took ~5 minutes)
    exceeded, unit_exceeded = set(report.exceeded), set(report.unit_exceeded)
    for title, rows in (("monthly estimate per tenant (USD)", report.tenants), ("per tenant and environment", report.deployments)):
        lines += [title + (f", against {report.base}" if compared else ""), header]
        for r in rows:
            notes = [r.status] if r.status else []
            if r.budget is not None and r.current is not None and r.current > r.budget:
                notes.append("over budget")
            if r in exceeded:
                notes.append(f"rises more than {report.max_increase:g}%")
            line = f"{r.tenant:<20} {r.environment or 'all':<12} "
            if compared:
                line += f"{_money(r.base):>12} "
            line += f"{_money(r.current):>12} "
            if compared:
                pct = "" if r.change_percent is None else f"{r.change_percent:+.1f}"
                line += f"{r.change:>+11,.2f} {pct:>7} "
            lines.append(f"{line}{_money(r.budget):>10}  {', '.join(notes)}".rstrip())
        lines.append("")
    if report.units:
        lines += ["cost per 1k requests per tenant (USD, all environments)" + (f", against {report.base}" if compared else "")]
        lines.append(
            f"{'tenant':<20} "
            + (f"{'base':>12} " if compared else "")
            + f"{'current':>12} "
            + (f"{'%':>7}  top contributors" if compared else "")
        )
        for u in report.units:
            line = f"{u.tenant:<20} " + (f"{_unit(u.base):>12} " if compared else "") + f"{_unit(u.current):>12} "
            if compared:
                pct = "" if u.change_percent is None else f"{u.change_percent:+.1f}"
                flag = f"  rises more than {report.max_unit_increase:g}%" if u in unit_exceeded else ""
                line += f"{pct:>7}  " + ", ".join(f"{p} {c:+,.2f}" for p, c in u.contributors) + flag
            lines.append(line.rstrip())
        lines.append("")
    if report.levers:
        lines.append("capacity levers (USD per month, all deployments; negative saves)")
        lines += [f"{name:<24} {amount:>+12,.2f}" for name, amount in sorted(report.levers.items())]
        lines.append("")
    return "\n".join(lines)


def _unit(value: float | None) -> str:
    return "-" if value is None else f"{value:,.4f}"


def run_at(
    root: Any,
    model: Model,
    base_ref: str | None,
    max_increase: float = DEFAULT_MAX_INCREASE,
    max_unit_increase: float = DEFAULT_MAX_UNIT_INCREASE,
) -> CostReport:
    """:func:`run` with the base catalog read from git (``cost --base REF``)."""
    if base_ref is None:
        return run(model, max_increase=max_increase, max_unit_increase=max_unit_increase)
    from generator.catalog import snapshot as baseline

    with baseline.at(root, base_ref) as base:
        base_model, base_error = pipeline.model_at(base)
        if base_model is None:
            # A change to the catalog format itself: nothing comparable to price. Say so
            # loudly and show today's estimate; the format change is reviewed on its own.
            report = run(model, max_increase=max_increase, max_unit_increase=max_unit_increase)
            report.note = f"not compared with {base_ref}: {base_error}"
            return report
        return run(model, base_model, base_ref, max_increase, max_unit_increase)
