"""Catalogs that would break tenant isolation (CO016), refused before anything renders.

A regulated tenant's data plane is its own, never a pool: CO001 blames the tier file, this
rule each tenant that would land in the pool, so the author of a tenant file sees it at the
line they wrote. (Two dedicated tenants in one account are refused while loading.) The
network fence it relies on: docs/isolation.md. Not waivable.
"""

from __future__ import annotations

from collections.abc import Iterator

from generator.model.resolve import Model
from generator.policy.core import Violation, rule


@rule(
    "CO016",
    "regulated-not-shared",
    "A regulated tenant never shares a pooled data plane with other tenants.",
    waivable=False,
)
def regulated_not_shared(model: Model) -> Iterator[Violation]:
    for d in model.deployments:
        if d.tier.regulated and not d.dedicated:
            yield Violation(
                "CO016",
                model.catalog.tenants[d.name].locate("tier"),
                f"regulated tenant '{d.name}' would share the pool of tier '{d.tier.name}' in {d.env}; give it a dedicated tier",
                d.name,
                d.env,
            )
