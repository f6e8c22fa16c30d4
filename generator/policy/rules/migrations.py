"""Forward-only database migrations (CO013, CO014, CO015), checked from the catalog.

Each service that migrates declares the schema version every environment runs and its
expand/contract history. Versions follow the promotion chain (CO013), a contract reaches an
environment only once its expand runs in production (CO014), and against ``--base REF`` no
version goes down and expand and contract never ship to production in one change (CO015).
The example and the rules: docs/guardrails.md ("Forward-only migrations").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator.catalog import snapshot as baseline
from generator.catalog import spec
from generator.errors import CatalogError
from generator.model.resolve import Model
from generator.policy.core import Violation, production, rule

BASE_RULES = {
    "CO015": (
        "forward-only-migrations",
        "Against the base ref no schema version goes down, and expand and contract never reach production in the same change.",
    ),
}


def _migrating(model: Model) -> Iterator[tuple[str, spec.Migrations]]:
    for name, service in model.services.items():
        if service.migrations is not None and (service.migrations.versions or service.migrations.history):
            yield name, service.migrations


def _deployed_envs(model: Model, service: str) -> set[str]:
    return {d.env for d in model.deployments if any(s.name == service for s in d.services)}


def promotion_order_violations(model: Model) -> Iterator[Violation]:
    """CO013: every environment the service runs in has a version, none ahead of its predecessor."""
    order = [e.name for e in model.environments]
    for name, mig in _migrating(model):
        entry = model.catalog.services[name]
        for env in mig.versions:
            if env not in order:
                yield Violation(
                    "CO013",
                    entry.locate("migrations", "versions", env, key=True),
                    f"service '{name}' declares a schema version for unknown environment '{env}'",
                )
        if not mig.versions:
            continue
        for env in sorted(_deployed_envs(model, name) - set(mig.versions), key=order.index):
            yield Violation(
                "CO013", entry.locate("migrations", "versions"), f"service '{name}' runs in {env} but declares no schema version for it"
            )
        previous: tuple[str, int] | None = None
        for env in order:
            if env not in mig.versions:
                continue
            version = mig.versions[env]
            if previous is not None and version > previous[1]:
                yield Violation(
                    "CO013",
                    entry.locate("migrations", "versions", env),
                    f"service '{name}' schema version {version} in {env} is ahead of {previous[1]} in {previous[0]}; "
                    f"a version reaches {env} only after {previous[0]} (dev >= stage >= prod)",
                )
            previous = (env, version)


def expand_contract_violations(model: Model) -> Iterator[Violation]:
    """CO014: history is consistent and no contract runs before its expand is in production."""
    prod = production(model)
    for name, mig in _migrating(model):
        entry = model.catalog.services[name]
        steps: dict[int, spec.MigrationStep] = {}
        for i, step in enumerate(mig.history):
            where = entry.locate("migrations", "history", i)
            if step.version in steps:
                yield Violation("CO014", where, f"service '{name}' lists migration {step.version} twice in its history")
                continue
            steps[step.version] = step
            if step.kind == "expand" and step.expands is not None:
                yield Violation(
                    "CO014",
                    entry.locate("migrations", "history", i, "expands"),
                    f"migration {step.version} of '{name}' is an expand; only a contract names the expand it completes",
                )
            if step.kind != "contract":
                continue
            expand = next((s for s in mig.history if s.version == step.expands and s.kind == "expand"), None)
            if step.expands is None or expand is None or step.expands >= step.version:
                yield Violation(
                    "CO014", where, f"contract {step.version} of '{name}' must name an earlier expand in its history under 'expands'"
                )
                continue
            prod_version = mig.versions.get(prod) if prod else None
            if prod_version is None or prod_version >= step.expands:
                continue
            for env, version in sorted(mig.versions.items()):
                if version >= step.version:
                    yield Violation(
                        "CO014",
                        entry.locate("migrations", "versions", env),
                        f"service '{name}' runs version {version} in {env}, which includes contract {step.version}, "
                        f"but its expand {step.expands} has not reached {prod} (at {prod_version}); ship the expand to {prod} first",
                    )


# --- against a base ref -------------------------------------------------------------------


def base_versions(raw_services: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Schema versions per service at the base ref, from raw service files (a base that no
    longer validates under today's spec still has comparable versions)."""
    out: dict[str, dict[str, int]] = {}
    for name, data in raw_services.items():
        mig = data.get("migrations") if isinstance(data, dict) else None
        versions = mig.get("versions") if isinstance(mig, dict) else None
        if isinstance(versions, dict):
            out[name] = {str(env): v for env, v in versions.items() if isinstance(v, int) and not isinstance(v, bool)}
    return out


def against_base(model: Model, before: dict[str, dict[str, int]], ref: str) -> list[CatalogError]:
    """CO015: versions never go down, and a contract never rides with its expand to prod."""
    errors: list[CatalogError] = []
    prod = production(model)
    for name, mig in _migrating(model):
        entry = model.catalog.services[name]
        old = before.get(name)
        if not old:  # versions introduced by this change: nothing to go back from
            continue
        for env, version in sorted(mig.versions.items()):
            if env in old and version < old[env]:
                errors.append(
                    CatalogError(
                        entry.locate("migrations", "versions", env),
                        f"[CO015] service '{name}' schema version in {env} goes down from {old[env]} (at {ref}) to {version}: "
                        "migrations are forward-only; roll forward with a new migration instead",
                    )
                )
        old_prod = old.get(prod, 0) if prod else 0
        for step in mig.history:
            if step.kind != "contract" or step.expands is None:
                continue
            for env, version in sorted(mig.versions.items()):
                newly = version >= step.version and old.get(env, 0) < step.version
                if newly and old_prod < step.expands:
                    errors.append(
                        CatalogError(
                            entry.locate("migrations", "versions", env),
                            f"[CO015] service '{name}': contract {step.version} reaches {env} in this change, but its expand "
                            f"{step.expands} was not in {prod} at {ref} (was {old_prod}); ship the expand to {prod} in an earlier change",
                        )
                    )
    return errors


def check_base(model: Model, ref: str) -> list[CatalogError]:
    """CO015 against ``ref``, read from git into a temporary folder (``validate --base``)."""
    with baseline.at(model.catalog.root, ref) as base:
        return against_base(model, base_versions(base.raw("catalog/services/*.yaml")), ref)


@rule(
    "CO013",
    "schema-promotion-order",
    "A schema version reaches an environment only after the one before it in the chain (dev >= stage >= prod).",
    waivable=False,
)
def schema_order(model: Model) -> Iterator[Violation]:
    yield from promotion_order_violations(model)


@rule(
    "CO014",
    "contract-after-expand",
    "A contract migration reaches any environment only once its expand runs in production.",
    waivable=False,
)
def contract_after_expand(model: Model) -> Iterator[Violation]:
    yield from expand_contract_violations(model)
