"""What a deployment serves of a flag: the first targeting rule matching it, else the default.

Every deployment is one tenant in one environment, so a rule's selectors (tenants, tiers,
environments) are decided here, at render time, and the rendered ``FeatureFlag`` holds only
what that deployment serves: a variant, or a percentage rollout that flagd evaluates per user
(``fractional``). ``targets/feature_flags.py`` renders it; ``companyos flag`` compares it
before and after an edit to say which tenants change.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.catalog import spec


@dataclass(frozen=True)
class Served:
    """The flag as one deployment serves it."""

    #: flagd's ``defaultVariant``: the variant, or the fallback of a rollout.
    variant: str
    #: (variant, percentage) pairs in variant order, when a rollout rule decided.
    rollout: tuple[tuple[str, int], ...] = ()
    #: 1-based index of the rule that decided (None: no rule matched, the default is served).
    rule: int | None = None


def matches(rule: spec.FlagRule, tenant: str, tier: str, env: str) -> bool:
    """Every selector the rule gives holds for this deployment (an empty one holds always)."""
    return (
        (not rule.tenants or tenant in rule.tenants)
        and (not rule.tiers or tier in rule.tiers)
        and (not rule.environments or env in rule.environments)
    )


def served(flag: spec.FlagSettings, tenant: str, tier: str, env: str) -> Served:
    for index, rule in enumerate(flag.targeting, start=1):
        if not matches(rule, tenant, tier, env):
            continue
        if rule.variant is not None:
            return Served(rule.variant, rule=index)
        return Served(flag.default_variant, tuple(sorted((rule.rollout or {}).items())), index)
    return Served(flag.default_variant)
