"""Production availability (CO007): Multi-AZ databases and cache replicas in another AZ."""

from __future__ import annotations

from collections.abc import Iterator

from generator.model.resolve import Model
from generator.policy.core import Violation, production, rule, setting_rule


@rule("CO007", "prod-multi-az", "Production databases are Multi-AZ and production caches keep a replica in another AZ.")
def prod_multi_az(model: Model) -> Iterator[Violation]:
    prod = production(model)
    in_prod = [d for d in model.deployments if d.env == prod]
    yield from setting_rule("CO007", model, in_prod, "database.multi_az", lambda v: v is True, f"'{prod}' is production, which is Multi-AZ")
    yield from setting_rule(
        "CO007",
        model,
        in_prod,
        "cache.replicas_per_shard",
        lambda v: v >= 1,
        f"'{prod}' is production: every cache shard needs a replica in another AZ",
    )
