"""Every policy rule, listed once (like pre-commit's table of languages).

A rule that is written but not listed here never runs; ids are stable because waivers and
docs refer to them.
"""

from __future__ import annotations

from generator.policy.core import Rule
from generator.policy.rules import (
    availability,
    capacity,
    delivery,
    isolation,
    migrations,
    ownership,
    regulated,
    resilience,
    supply_chain,
    tier_guardrails,
)

RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        regulated.regulated_dedicated,
        regulated.regulated_own_account,
        regulated.kms_rotation,
        regulated.object_lock,
        regulated.backup_retention,
        regulated.pitr_copy,
        availability.prod_multi_az,
        ownership.cost_ownership,
        tier_guardrails.instance_classes,
        ownership.log_retention,
        delivery.promotion_chain,
        tier_guardrails.tier_guardrails,
        migrations.schema_order,
        migrations.contract_after_expand,
        isolation.regulated_not_shared,
        resilience.prod_backups,
        resilience.rpo_reachable,
        capacity.scale_to_zero_pdb,
        capacity.keda_own_queue,
        capacity.spot_allowed,
        capacity.scale_to_zero_signal,
        capacity.node_budget,
        supply_chain.client_image_pinned,
    )
}

#: Rules that compare against a base git ref (``--base``): listed, not run by :data:`RULES`.
BASE_RULES = migrations.BASE_RULES
