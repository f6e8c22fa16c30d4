"""Guardrails over the resolved model.

A tier declares bounds on settings paths (``guardrails``) and the instance classes it
allows. Lower layers (environment, tenant, tenant x environment) may tune settings but
never past those bounds. A violation blames the layer that set the offending value and
names the rule it breaks, so the reviewer sees both ends at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from generator import spec
from generator.errors import CatalogError, Location
from generator.layers import lookup

if TYPE_CHECKING:
    from generator.model import Deployment, Model


def _violation(rail: spec.Guardrail, value: Any) -> str | None:
    if rail.min is not None and isinstance(value, int) and value < rail.min:
        return f"must be at least {rail.min}"
    if rail.max is not None and isinstance(value, int) and value > rail.max:
        return f"must be at most {rail.max}"
    if rail.equals is not None and value != rail.equals:
        return f"must be {json.dumps(rail.equals)}"
    if rail.one_of is not None and value not in rail.one_of:
        return f"must be one of {', '.join(rail.one_of)}"
    return None


def _blame(deployment: Deployment, path: str, tier_path: str) -> Location:
    origins = deployment.provenance.get(path, ())
    return origins[-1].location if origins else Location(tier_path)


def check_guardrails(model: Model) -> list[CatalogError]:
    """Every (tenant, environment) against its tier's guardrails; errors deduplicated."""
    errors: dict[tuple[Location, str], CatalogError] = {}
    for deployment in model.deployments:
        for error in _deployment_guardrails(model, deployment):
            errors.setdefault((error.location, error.message), error)
    return list(errors.values())


def _deployment_guardrails(model: Model, d: Deployment) -> Iterator[CatalogError]:
    tier_entry = model.catalog.tiers[d.tier.name]
    values = d.settings.model_dump()
    for path, rail in sorted(d.tier.guardrails.items()):
        if rail.environments is not None and d.env not in rail.environments:
            continue
        value = lookup(values, tuple(path.split(".")))
        problem = _violation(rail, value)
        if problem:
            rule_at = tier_entry.locate("guardrails", path, key=True)
            yield CatalogError(
                _blame(d, path, tier_entry.path),
                f"{path} = {json.dumps(value)} for tenant '{d.name}' in {d.env} breaks tier '{d.tier.name}' guardrail "
                f"({rule_at}): {path} {problem} ({rail.reason})",
            )
    allowed = d.tier.allowed_instance_classes
    for path, value, options in (
        ("database.instance_class", d.settings.database.instance_class, allowed.database),
        ("cache.node_type", d.settings.cache.node_type, allowed.cache),
    ):
        if value not in options:
            rule_at = tier_entry.locate("allowed_instance_classes", path.split(".")[0])
            yield CatalogError(
                _blame(d, path, tier_entry.path),
                f"{path} '{value}' for tenant '{d.name}' in {d.env} is not allowed for tier '{d.tier.name}' "
                f"({rule_at}); allowed: {', '.join(options)}",
            )
