"""Waivers: approved, time-boxed exceptions to policy rules (``catalog/waivers.yaml``).

A waiver names one rule, one tenant (optionally one environment), why, who approved it
and the last day it applies. While valid it turns that tenant's violations of the rule
into notes. It is an error, blamed on the waiver's own ``path:line:col``, when it has
expired (the violations it covered come back too), when it covers nothing (fixed
problems must not leave a blank cheque behind), or when it names an unknown rule or
tenant. Time enters only as the ``today`` argument, so the outcome is a pure function of
the catalog and the date.
"""

from __future__ import annotations

import datetime

from generator.catalog import spec
from generator.errors import CatalogError, Location
from generator.model import admission
from generator.model.resolve import Model
from generator.policy.core import Rule, Violation, Waived, merge_same_setting

WAIVERS_PATH = "catalog/waivers.yaml"


def _entries(model: Model) -> list[tuple[spec.Waiver, Location]]:
    entry = model.catalog.single("waivers")
    if entry is None:
        return []
    return [(w, entry.locate("waivers", i)) for i, w in enumerate(entry.spec.waivers)]


def _expiry(waiver: spec.Waiver) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(waiver.expires)
    except ValueError:
        return None


def _covers(waiver: spec.Waiver, violation: Violation) -> bool:
    return (
        waiver.rule == violation.rule
        and waiver.tenant == violation.tenant
        and (waiver.environment is None or waiver.environment == violation.environment)
    )


def apply_waivers(
    model: Model, violations: list[Violation], today: datetime.date, rules: dict[str, Rule]
) -> tuple[list[CatalogError], list[Waived]]:
    """Split ``violations`` into errors and waived notes; add the waivers' own errors."""
    errors: list[CatalogError] = []
    active: list[tuple[spec.Waiver, Location]] = []
    for waiver, where in _entries(model):
        label = f"waiver of {waiver.rule} for tenant '{waiver.tenant}'"
        expires = _expiry(waiver)
        if waiver.rule not in rules:
            errors.append(CatalogError(where, f"{label} names an unknown rule (see `companyos policy list`)"))
        elif not rules[waiver.rule].waivable:
            errors.append(CatalogError(where, f"{label}: {waiver.rule} is about the catalog's shape, not one tenant, and cannot be waived"))
        elif waiver.tenant not in model.tenants:
            errors.append(CatalogError(where, f"{label} names an unknown tenant"))
        elif waiver.environment is not None and waiver.environment not in model.tenants[waiver.tenant].environments:
            errors.append(CatalogError(where, f"{label} names environment '{waiver.environment}', which the tenant is not deployed to"))
        elif expires is None:
            errors.append(CatalogError(where, f"{label}: expires '{waiver.expires}' is not a real date"))
        elif expires < today:
            errors.append(
                CatalogError(
                    where, f"{label} expired on {waiver.expires} (approved by {waiver.approver}); fix the violation or get a new approval"
                )
            )
        else:
            active.append((waiver, where))
    used: set[int] = set()
    waived: list[Waived] = []
    unwaived: list[Violation] = []
    for violation in violations:
        match = next((i for i, (w, _) in enumerate(active) if _covers(w, violation)), None)
        if match is None:
            unwaived.append(violation)
        else:
            used.add(match)
            waived.append(Waived(violation, *active[match]))
    errors.extend(merge_same_setting(unwaived))
    errors.extend(admission.expired(model.catalog, today))
    for i, (waiver, where) in enumerate(active):
        if i not in used:
            errors.append(
                CatalogError(
                    where, f"waiver of {waiver.rule} for tenant '{waiver.tenant}' is unused: nothing it covers is violated; remove it"
                )
            )
    return errors, waived
