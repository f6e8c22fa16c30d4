"""Tier guardrails as data (CO009, CO012): bounds and allowed classes no override may weaken."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from generator.catalog import spec
from generator.model.layers import lookup
from generator.model.resolve import Deployment, Model
from generator.policy.core import Violation, blame, once_per_settings, rule, settings_value


@rule("CO009", "tier-instance-classes", "Database and cache instance classes stay within the tier's allowed list.")
def instance_classes(model: Model) -> Iterator[Violation]:
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


@rule("CO012", "tier-guardrails", "No environment or tenant override weakens a tier guardrail.")
def tier_guardrails(model: Model) -> Iterator[Violation]:
    broken = once_per_settings(_broken, by=lambda d: (d.tier.name, d.env))  # the rails read the tier and environment too
    for d in model.deployments:
        found = broken(d)
        if not found:
            continue
        tier_entry = model.catalog.tiers[d.tier.name]
        for path, rail, value, problem in found:
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


def _broken(d: Deployment) -> list[tuple[str, spec.Guardrail, Any, str]]:
    """(path, guardrail, value, what is wrong) of each guardrail of ``d``'s tier in force in its
    environment that its settings break, in path order."""
    out = []
    for path, rail in sorted(d.tier.guardrails.items()):
        if rail.environments is not None and d.env not in rail.environments:
            continue
        value = setting_at(d.settings, tuple(path.split(".")))
        problem = guardrail_problem(rail, value)
        if problem:
            out.append((path, rail, value, problem))
    return out


def setting_at(settings: BaseModel, path: tuple[str, ...]) -> Any:
    """The value at ``path`` as ``lookup(settings.model_dump(), path)`` gives it, reading
    only that path (``core.settings_value``): at 10,000 tenants x 3 dumping every
    deployment's settings was ~0.3 s of each run, for the few values a guardrail names."""
    node = settings_value(settings, path)
    if isinstance(node, BaseModel | dict | list | tuple | set):  # a container: dumped as model_dump would
        return lookup(settings.model_dump(), path)
    return node


def guardrail_problem(rail: spec.Guardrail, value: Any) -> str | None:
    if rail.min is not None and isinstance(value, int) and value < rail.min:
        return f"must be at least {rail.min}"
    if rail.max is not None and isinstance(value, int) and value > rail.max:
        return f"must be at most {rail.max}"
    if rail.equals is not None and value != rail.equals:
        return f"must be {json.dumps(rail.equals)}"
    if rail.one_of is not None and value not in rail.one_of:
        return f"must be one of {', '.join(rail.one_of)}"
    return None
