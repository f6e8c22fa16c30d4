"""Cost ownership and log retention (CO008, CO010): someone pays and hears, logs kept within bounds."""

from __future__ import annotations

from collections.abc import Iterator

from generator.model.resolve import Model
from generator.policy.core import Violation, blame, rule


@rule("CO008", "cost-ownership", "Every tenant has an owner and a cost center, and its budget alerts reach someone before 100%.")
def cost_ownership(model: Model) -> Iterator[Violation]:
    # owner and cost_center are required, well-formed keys of every tenant file (spec.Tenant),
    # so a tenant without them never gets this far; the rule adds what the schema cannot say.
    for d in model.deployments:
        budget = d.settings.budget
        if not budget.notify:
            yield Violation(
                "CO008",
                blame(d, "budget.notify", model.source("tenant", d.name)),
                f"budget.notify is empty for tenant '{d.name}' in {d.env}: budget alerts must reach someone",
                d.name,
                d.env,
            )
        if not any(t <= 100 for t in budget.alert_thresholds):
            yield Violation(
                "CO008",
                blame(d, "budget.alert_thresholds", model.source("tenant", d.name)),
                f"budget.alert_thresholds {budget.alert_thresholds} for tenant '{d.name}' in {d.env}: at least one alert must fire at or before 100% of the budget",
                d.name,
                d.env,
            )


@rule("CO010", "log-retention-bounds", "Log retention stays within the environment's bounds (cost and compliance).")
def log_retention(model: Model) -> Iterator[Violation]:
    for d in model.deployments:
        bounds = d.environment.log_retention
        days = d.settings.logs.retention_days
        if not bounds.min_days <= days <= bounds.max_days:
            rule_at = model.catalog.environments[d.env].locate("log_retention", key=True)
            yield Violation(
                "CO010",
                blame(d, "logs.retention_days", model.source("environment", d.env)),
                f"logs.retention_days = {days} for tenant '{d.name}' in {d.env} is outside the environment's bounds "
                f"({rule_at}): {bounds.min_days}-{bounds.max_days} days",
                d.name,
                d.env,
            )
