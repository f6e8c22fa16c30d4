"""Run every listed rule over a resolved model, then apply the approved waivers.

The policy stage of the pipeline: pure, with ``today`` as its only notion of time (the
pipeline passes it in), so the verdict is a function of the catalog and the date.
"""

from __future__ import annotations

import datetime

from generator.catalog.load import Catalog
from generator.errors import CatalogError
from generator.model.resolve import Model
from generator.policy.core import PolicyReport, Violation
from generator.policy.registry import BASE_RULES, RULES
from generator.policy.waivers import apply_waivers


def violations(model: Model) -> list[Violation]:
    """Every rule's violations, deduplicated (a value set in a shared file breaks a rule
    once per tenant that inherits it: each tenant needs its own waiver)."""
    found: set[Violation] = set()
    for item in RULES.values():
        found.update(item.check(model))
    return sorted(found, key=Violation.key)


def root_causes(catalog: Catalog) -> list[CatalogError]:
    """The rules that can judge the loaded catalog alone (see ``Rule.catalog_check``): what
    the pipeline reports first when the catalog does not resolve."""
    found: set[Violation] = set()
    for item in RULES.values():
        if item.catalog_check is not None:
            found.update(item.catalog_check(catalog))
    return [v.error() for v in sorted(found, key=Violation.key)]


def evaluate(model: Model, today: datetime.date) -> PolicyReport:
    """All rules, minus what valid waivers cover, plus the waivers' own problems."""
    errors, waived = apply_waivers(model, violations(model), today, RULES)
    return PolicyReport(sorted(errors), waived)


def describe_rules() -> list[dict[str, object]]:
    """``companyos policy list``: id, name and rationale of every rule."""
    rules: list[dict[str, object]] = [
        {"id": r.id, "name": r.name, "rationale": r.rationale, "waivable": r.waivable} for r in RULES.values()
    ]
    rules += [
        {"id": rule_id, "name": name, "rationale": f"{rationale} (needs --base)", "waivable": False}
        for rule_id, (name, rationale) in BASE_RULES.items()
    ]
    return sorted(rules, key=lambda r: str(r["id"]))
