"""Policy rules over the resolved model: guardrails as code.

Every rule is a :class:`Rule` in :data:`RULES`: an id (``CO001``), a one-line rationale and
a ``check(model)`` that yields :class:`Violation` records, each blaming the file:line:col
that set the offending value. :func:`evaluate` runs them all, applies the approved
waivers (``catalog/waivers.yaml``, see ``waivers``) and returns every remaining problem
at once; :func:`check_guardrails` is the entry point ``model.resolve`` calls, so no
command renders a catalog that breaks a rule.

Two families of rules work together on purpose:

* *tier guardrails* (CO009, CO012) are data: a tier file declares bounds and allowed
  instance classes, and no environment or tenant layer may weaken them;
* *organisation rules* (the rest) are code: they hold whatever the tier files say, so
  deleting a guardrail from ``catalog/tiers/regulated.yaml`` cannot quietly switch off the
  regulated-tenant controls.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from generator import spec
from generator.errors import CatalogError, Location
from generator.layers import in_force, lookup

if TYPE_CHECKING:
    from generator.model import Deployment, Model
    from generator.waivers import Waived


@dataclass(frozen=True, order=True)
class Violation:
    """One broken rule, with the location to fix and the tenant a waiver could name."""

    rule: str
    location: Location
    message: str
    tenant: str | None = None
    environment: str | None = None
    #: The settings path at fault, when there is one (joins a guardrail and a rule on it).
    setting: str | None = None

    def error(self, also: tuple[str, ...] = ()) -> CatalogError:
        suffix = f" (also breaks {', '.join(also)})" if also else ""
        return CatalogError(self.location, f"[{self.rule}] {self.message}{suffix}")

    def key(self) -> tuple[str, Location, str, str, str]:
        return (self.rule, self.location, self.message, self.tenant or "", self.environment or "")


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    rationale: str
    check: Callable[[Model], Iterable[Violation]] = field(repr=False)
    #: False for rules about the catalog's shape rather than one tenant: no waiver applies.
    waivable: bool = True


#: Every rule, in id order. Ids are stable: waivers and docs refer to them.
RULES: dict[str, Rule] = {}


def rule(rule_id: str, name: str, rationale: str, *, waivable: bool = True) -> Callable[[Callable[[Model], Iterable[Violation]]], Callable[[Model], Iterable[Violation]]]:
    """Register ``check`` as rule ``rule_id``."""

    def register(check: Callable[[Model], Iterable[Violation]]) -> Callable[[Model], Iterable[Violation]]:
        assert rule_id not in RULES, f"duplicate rule id {rule_id}"
        RULES[rule_id] = Rule(rule_id, name, rationale, check, waivable)
        return check

    return register


# --- evaluation ------------------------------------------------------------------------


@dataclass
class PolicyReport:
    errors: list[CatalogError]
    waived: list[Waived]

    @property
    def ok(self) -> bool:
        return not self.errors


#: Off while a base ref is resolved for comparison (cost, destructive guard): yesterday's
#: catalog is not judged by today's waivers.
_ENFORCE: contextvars.ContextVar[bool] = contextvars.ContextVar("companyos_policy_enforce", default=True)


@contextlib.contextmanager
def not_enforced() -> Iterator[None]:
    token = _ENFORCE.set(False)
    try:
        yield
    finally:
        _ENFORCE.reset(token)


def violations(model: Model) -> list[Violation]:
    """Every rule's violations, deduplicated (a value set in a shared file breaks a rule
    once per tenant that inherits it: each tenant needs its own waiver)."""
    found: set[Violation] = set()
    for item in RULES.values():
        found.update(item.check(model))
    return sorted(found, key=Violation.key)


def evaluate(model: Model, today: datetime.date) -> PolicyReport:
    """All rules, minus what valid waivers cover, plus the waivers' own problems.

    Pure: ``today`` is the only notion of time (the CLI passes ``date.today()``)."""
    from generator.waivers import apply_waivers

    errors, waived = apply_waivers(model, violations(model), today)
    return PolicyReport(sorted(errors), waived)


def merge_same_setting(found: list[Violation]) -> list[CatalogError]:
    """One line per offending value: when a tier guardrail (CO012) and an organisation
    rule reject the same setting of the same deployment at the same place, print the
    guardrail's message (it names both ends) and list the rule's id after it. Each rule
    still needs its own waiver: this only joins what is left after waivers."""
    guard = {(v.setting, v.location, v.tenant, v.environment): v for v in found if v.rule == "CO012" and v.setting}
    also: dict[Violation, list[str]] = {}
    out: list[CatalogError] = []
    for v in found:
        twin = guard.get((v.setting, v.location, v.tenant, v.environment)) if v.rule != "CO012" and v.setting else None
        if twin is not None:
            also.setdefault(twin, []).append(v.rule)
    for v in found:
        if v.rule != "CO012" and v.setting and (v.setting, v.location, v.tenant, v.environment) in guard:
            continue
        out.append(v.error(tuple(sorted(set(also.get(v, []))))))
    return out


def check_guardrails(model: Model, today: datetime.date | None = None) -> PolicyReport:
    """What ``model.resolve`` calls: :func:`evaluate` for today, or nothing at all under
    :func:`not_enforced`."""
    if not _ENFORCE.get():
        return PolicyReport([], [])
    return evaluate(model, today or datetime.date.today())


# --- helpers -----------------------------------------------------------------------------


def blame(d: Deployment, path: str, fallback: str) -> Location:
    """The file:line:col of the layer whose value is in force for ``path``."""
    return in_force(d.provenance, path, fallback)


def value_of(d: Deployment, path: str) -> Any:
    """The resolved value at a dotted settings path (no model_dump: rules run per deployment)."""
    node: Any = d.settings
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
    return node


def production(model: Model) -> str | None:
    """The last environment of the promotion chain is production."""
    return model.environments[-1].name if model.environments else None


def _regulated(model: Model) -> Iterator[Deployment]:
    return (d for d in model.deployments if d.tier.regulated)


def _setting_rule(rule_id: str, model: Model, deployments: Iterable[Deployment], path: str,
                  ok: Callable[[Any], bool], expectation: str) -> Iterator[Violation]:
    for d in deployments:
        value = value_of(d, path)
        if not ok(value):
            yield Violation(
                rule_id,
                blame(d, path, model.source("tier", d.tier.name)),
                f"{path} = {json.dumps(value)} for tenant '{d.name}' in {d.env}: {expectation}",
                d.name,
                d.env,
                path,
            )


# --- organisation rules ------------------------------------------------------------------


@rule("CO001", "regulated-dedicated", "A regulated tier isolates each tenant: dedicated accounts, never a pooled data plane.", waivable=False)
def _regulated_dedicated(model: Model) -> Iterator[Violation]:
    for name, tier in model.tiers.items():
        if tier.regulated and tier.isolation != "dedicated":
            entry = model.catalog.tiers[name]
            yield Violation("CO001", entry.locate("isolation"), f"tier '{name}' is regulated, so its isolation must be 'dedicated', not '{tier.isolation}'")


@rule("CO002", "regulated-own-account", "No regulated tenant runs in a pooled, shared-services, DR-verify or state account.")
def _regulated_own_account(model: Model) -> Iterator[Violation]:
    shared: dict[str, str] = {model.platform.terraform_state.account: f"{model.source('platform', 'platform')} terraform_state.account"}
    for env in model.environments:
        path = model.source("environment", env.name)
        shared.setdefault(env.accounts.shared_services, f"{path} accounts.shared_services")
        shared.setdefault(env.accounts.dr_verify, f"{path} accounts.dr_verify")
        for tier, account in env.accounts.pools.items():
            shared.setdefault(account, f"{path} accounts.pools.{tier}")
    for d in _regulated(model):
        account = d.account_id
        if account in shared:
            entry = model.catalog.tenants[d.name]
            where = entry.locate("accounts", d.env) if d.env in d.tenant.accounts else entry.locate("tier")
            yield Violation("CO002", where, f"regulated tenant '{d.name}' in {d.env} runs in account {account}, which is shared ({shared[account]}); give it a dedicated account", d.name, d.env)


@rule("CO003", "regulated-kms-rotation", "Regulated tenants' KMS keys rotate at least every 90 days.")
def _kms_rotation(model: Model) -> Iterator[Violation]:
    yield from _setting_rule("CO003", model, _regulated(model), "kms.rotation_days", lambda v: v <= 90, "regulated keys must rotate at least every 90 days")


@rule("CO004", "regulated-object-lock", "Regulated tenants' buckets are versioned with object lock in compliance mode.")
def _object_lock(model: Model) -> Iterator[Violation]:
    yield from _setting_rule("CO004", model, _regulated(model), "storage.object_lock", lambda v: v == "compliance", "regulated buckets need object lock in compliance mode")
    yield from _setting_rule("CO004", model, _regulated(model), "storage.versioning", lambda v: v is True, "object lock requires bucket versioning")


@rule("CO005", "regulated-backup-retention", "Regulated databases keep at least 35 days of automated backups.")
def _backup_retention(model: Model) -> Iterator[Violation]:
    yield from _setting_rule("CO005", model, _regulated(model), "database.backup_retention_days", lambda v: v >= 35, "regulated databases keep at least 35 days of backups")


@rule("CO006", "regulated-pitr-dr-copy", "Regulated databases have point-in-time recovery and a cross-region snapshot copy.")
def _pitr_copy(model: Model) -> Iterator[Violation]:
    yield from _setting_rule("CO006", model, _regulated(model), "database.pitr", lambda v: v is True, "point-in-time recovery is required (RPO 5 minutes)")
    yield from _setting_rule("CO006", model, _regulated(model), "database.cross_region_copy", lambda v: v is True, "snapshots must be copied to the DR region")


@rule("CO007", "prod-multi-az", "Production databases are Multi-AZ and production caches keep a replica in another AZ.")
def _prod_multi_az(model: Model) -> Iterator[Violation]:
    prod = production(model)
    in_prod = [d for d in model.deployments if d.env == prod]
    yield from _setting_rule("CO007", model, in_prod, "database.multi_az", lambda v: v is True, f"'{prod}' is production, which is Multi-AZ")
    yield from _setting_rule("CO007", model, in_prod, "cache.replicas_per_shard", lambda v: v >= 1, f"'{prod}' is production: every cache shard needs a replica in another AZ")


@rule("CO008", "cost-ownership", "Every tenant has an owner and a cost center, and its budget alerts reach someone before 100%.")
def _cost_ownership(model: Model) -> Iterator[Violation]:
    # owner and cost_center are required, well-formed keys of every tenant file (spec.Tenant),
    # so a tenant without them never gets this far; the rule adds what the schema cannot say.
    for d in model.deployments:
        budget = d.settings.budget
        if not budget.notify:
            yield Violation("CO008", blame(d, "budget.notify", model.source("tenant", d.name)), f"budget.notify is empty for tenant '{d.name}' in {d.env}: budget alerts must reach someone", d.name, d.env)
        if not any(t <= 100 for t in budget.alert_thresholds):
            yield Violation("CO008", blame(d, "budget.alert_thresholds", model.source("tenant", d.name)),
                            f"budget.alert_thresholds {budget.alert_thresholds} for tenant '{d.name}' in {d.env}: at least one alert must fire at or before 100% of the budget", d.name, d.env)


@rule("CO009", "tier-instance-classes", "Database and cache instance classes stay within the tier's allowed list.")
def _instance_classes(model: Model) -> Iterator[Violation]:
    for d in model.deployments:
        tier_entry = model.catalog.tiers[d.tier.name]
        allowed = d.tier.allowed_instance_classes
        for path, value, options in (
            ("database.instance_class", d.settings.database.instance_class, allowed.database),
            ("cache.node_type", d.settings.cache.node_type, allowed.cache),
        ):
            if value not in options:
                rule_at = tier_entry.locate("allowed_instance_classes", path.split(".")[0])
                yield Violation(
                    "CO009",
                    blame(d, path, tier_entry.path),
                    f"{path} '{value}' for tenant '{d.name}' in {d.env} is not allowed for tier '{d.tier.name}' "
                    f"({rule_at}); allowed: {', '.join(options)}",
                    d.name,
                    d.env,
                )


@rule("CO010", "log-retention-bounds", "Log retention stays within the environment's bounds (cost and compliance).")
def _log_retention(model: Model) -> Iterator[Violation]:
    for d in model.deployments:
        bounds = d.environment.log_retention
        days = d.settings.logs.retention_days
        if not bounds.min_days <= days <= bounds.max_days:
            rule_at = model.catalog.environments[d.env].locate("log_retention", key=True)
            yield Violation("CO010", blame(d, "logs.retention_days", model.source("environment", d.env)),
                            f"logs.retention_days = {days} for tenant '{d.name}' in {d.env} is outside the environment's bounds "
                            f"({rule_at}): {bounds.min_days}-{bounds.max_days} days", d.name, d.env)


@rule("CO011", "promotion-chain", "Environments form one promotion chain (dev -> stage -> prod), so every change is tried before production.", waivable=False)
def _promotion_chain(model: Model) -> Iterator[Violation]:
    # Also enforced while loading (references), because resolving needs a chain; kept here
    # so the rule is listed, documented and reported with its id.
    from generator.references import promotion_chain_errors

    for error in promotion_chain_errors(model.catalog):
        yield Violation("CO011", error.location, error.message)


@rule("CO012", "tier-guardrails", "No environment or tenant override weakens a tier guardrail.")
def _tier_guardrails(model: Model) -> Iterator[Violation]:
    for d in model.deployments:
        tier_entry = model.catalog.tiers[d.tier.name]
        values = d.settings.model_dump()
        for path, rail in sorted(d.tier.guardrails.items()):
            if rail.environments is not None and d.env not in rail.environments:
                continue
            value = lookup(values, tuple(path.split(".")))
            problem = _guardrail_problem(rail, value)
            if problem:
                rule_at = tier_entry.locate("guardrails", path, key=True)
                yield Violation(
                    "CO012",
                    blame(d, path, tier_entry.path),
                    f"{path} = {json.dumps(value)} for tenant '{d.name}' in {d.env} breaks tier '{d.tier.name}' guardrail "
                    f"({rule_at}): {path} {problem} ({rail.reason})",
                    d.name,
                    d.env,
                    path,
                )


def _guardrail_problem(rail: spec.Guardrail, value: Any) -> str | None:
    if rail.min is not None and isinstance(value, int) and value < rail.min:
        return f"must be at least {rail.min}"
    if rail.max is not None and isinstance(value, int) and value > rail.max:
        return f"must be at most {rail.max}"
    if rail.equals is not None and value != rail.equals:
        return f"must be {json.dumps(rail.equals)}"
    if rail.one_of is not None and value not in rail.one_of:
        return f"must be one of {', '.join(rail.one_of)}"
    return None


@rule("CO013", "schema-promotion-order", "A schema version reaches an environment only after the one before it in the chain (dev >= stage >= prod).", waivable=False)
def _schema_order(model: Model) -> Iterator[Violation]:
    from generator.schema_versions import promotion_order_violations

    yield from promotion_order_violations(model)


@rule("CO014", "contract-after-expand", "A contract migration reaches any environment only once its expand runs in production.", waivable=False)
def _contract_after_expand(model: Model) -> Iterator[Violation]:
    from generator.schema_versions import expand_contract_violations

    yield from expand_contract_violations(model)


def describe_rules() -> list[dict[str, str]]:
    """``companyos policy list``: id, name and rationale of every rule."""
    from generator.schema_versions import BASE_RULES

    rules = [{"id": r.id, "name": r.name, "rationale": r.rationale, "waivable": r.waivable} for r in RULES.values()]
    rules += [{"id": rule_id, "name": name, "rationale": f"{rationale} (needs --base)", "waivable": False}
              for rule_id, (name, rationale) in BASE_RULES.items()]
    return sorted(rules, key=lambda r: r["id"])
