"""Backups by policy and a reachable RPO (CO020-CO021, issue 15).

Every production database, pooled ones too, keeps 35 days of automated backups with
point-in-time recovery and a daily copy in the DR region (waivable per tenant); and the
environment's ``rpo_minutes`` must be reachable by the way its data reaches the DR region
(``disaster_recovery.replication``, or the daily snapshot copy without a standby): a promise
the architecture cannot keep is an error, never waivable.
"""

from __future__ import annotations

from collections.abc import Iterator

from generator.catalog.load import Catalog
from generator.catalog.spec import ACHIEVABLE_RPO_MINUTES
from generator.model.resolve import Model
from generator.policy.core import Violation, production, rule, setting_rule

#: Days of automated backups every production database keeps.
PROD_BACKUP_DAYS = 35


@rule("CO020", "prod-backups", "Production databases (pooled too) keep 35 days of backups with PITR and a daily cross-region copy.")
def prod_backups(model: Model) -> Iterator[Violation]:
    prod = production(model)
    deployments = [d for d in model.deployments if d.env == prod]
    checks = (
        (
            "database.backup_retention_days",
            lambda v: v >= PROD_BACKUP_DAYS,
            f"production databases keep at least {PROD_BACKUP_DAYS} days of backups",
        ),
        ("database.pitr", lambda v: v is True, "production databases need point-in-time recovery"),
        ("database.cross_region_copy", lambda v: v is True, "production backups are copied daily to the DR region"),
    )
    for path, ok, expectation in checks:
        yield from setting_rule("CO020", model, deployments, path, ok, expectation)


def _rpo_reachable(catalog: Catalog) -> Iterator[Violation]:
    envs = catalog.environments
    # production is the environment no other is promoted after it (the end of the chain)
    followed = {e.spec.promotion.after for e in envs.values()}
    for name, entry in sorted(envs.items()):
        env = entry.spec
        dr = env.disaster_recovery
        if dr is None and name in followed:
            continue  # only production and environments with a standby promise a regional RPO
        method = dr.replication if dr is not None else "snapshot_copy"
        best = ACHIEVABLE_RPO_MINUTES[method]
        if env.rpo_minutes < best:
            if dr is not None and "replication" in (entry.doc.data.get("disaster_recovery") or {}):
                where = entry.locate("disaster_recovery", "replication")
            else:
                where = entry.locate("rpo_minutes")
            how = f"disaster_recovery.replication '{method}'" if dr is not None else "the daily snapshot copy (no disaster_recovery)"
            yield Violation(
                "CO021",
                where,
                f"environment '{name}' promises rpo_minutes {env.rpo_minutes}, but {how} cannot lose less than {best} minutes; "
                f"use replication 'replica' or raise rpo_minutes",
                environment=name,
            )


@rule(
    "CO021",
    "rpo-reachable",
    "An environment's RPO must be reachable by how its data reaches the DR region.",
    waivable=False,
    catalog_check=_rpo_reachable,
)
def rpo_reachable(model: Model) -> Iterator[Violation]:
    yield from _rpo_reachable(model.catalog)
