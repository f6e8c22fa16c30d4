"""Controls every regulated tenant gets, whatever its tier file says (CO001-CO006).

They are code, not tier data, so deleting a guardrail from ``catalog/tiers/regulated.yaml``
cannot quietly switch them off.
"""

from __future__ import annotations

from collections.abc import Iterator

from generator.catalog.load import Catalog
from generator.model.resolve import Model
from generator.policy.core import Violation, regulated, rule, setting_rule


def _regulated_tiers_dedicated(catalog: Catalog) -> Iterator[Violation]:
    for name, entry in sorted(catalog.tiers.items()):
        tier = entry.spec
        if tier.regulated and tier.isolation != "dedicated":
            yield Violation(
                "CO001",
                entry.locate("isolation"),
                f"tier '{name}' is regulated, so its isolation must be 'dedicated', not '{tier.isolation}'",
            )


@rule(
    "CO001",
    "regulated-dedicated",
    "A regulated tier isolates each tenant: dedicated accounts, never a pooled data plane.",
    waivable=False,
    catalog_check=_regulated_tiers_dedicated,
)
def regulated_dedicated(model: Model) -> Iterator[Violation]:
    yield from _regulated_tiers_dedicated(model.catalog)


@rule("CO002", "regulated-own-account", "No regulated tenant runs in a pooled, shared-services, DR-verify or state account.")
def regulated_own_account(model: Model) -> Iterator[Violation]:
    shared: dict[str, str] = {model.platform.terraform_state.account: f"{model.source('platform', 'platform')} terraform_state.account"}
    for env in model.environments:
        path = model.source("environment", env.name)
        shared.setdefault(env.accounts.shared_services, f"{path} accounts.shared_services")
        shared.setdefault(env.accounts.dr_verify, f"{path} accounts.dr_verify")
        for tier, account in env.accounts.pools.items():
            shared.setdefault(account, f"{path} accounts.pools.{tier}")
    for d in regulated(model):
        account = d.account_id
        if account in shared:
            entry = model.catalog.tenants[d.name]
            where = entry.locate("accounts", d.env) if d.env in d.tenant.accounts else entry.locate("tier")
            yield Violation(
                "CO002",
                where,
                f"regulated tenant '{d.name}' in {d.env} runs in account {account}, which is shared ({shared[account]}); give it a dedicated account",
                d.name,
                d.env,
            )


@rule("CO003", "regulated-kms-rotation", "Regulated tenants' KMS keys rotate at least every 90 days.")
def kms_rotation(model: Model) -> Iterator[Violation]:
    yield from setting_rule(
        "CO003", model, regulated(model), "kms.rotation_days", lambda v: v <= 90, "regulated keys must rotate at least every 90 days"
    )


@rule("CO004", "regulated-object-lock", "Regulated tenants' buckets are versioned with object lock in compliance mode.")
def object_lock(model: Model) -> Iterator[Violation]:
    yield from setting_rule(
        "CO004",
        model,
        regulated(model),
        "storage.object_lock",
        lambda v: v == "compliance",
        "regulated buckets need object lock in compliance mode",
    )
    yield from setting_rule(
        "CO004", model, regulated(model), "storage.versioning", lambda v: v is True, "object lock requires bucket versioning"
    )


@rule("CO005", "regulated-backup-retention", "Regulated databases keep at least 35 days of automated backups.")
def backup_retention(model: Model) -> Iterator[Violation]:
    yield from setting_rule(
        "CO005",
        model,
        regulated(model),
        "database.backup_retention_days",
        lambda v: v >= 35,
        "regulated databases keep at least 35 days of backups",
    )


@rule("CO006", "regulated-pitr-dr-copy", "Regulated databases have point-in-time recovery and a cross-region snapshot copy.")
def pitr_copy(model: Model) -> Iterator[Violation]:
    yield from setting_rule(
        "CO006", model, regulated(model), "database.pitr", lambda v: v is True, "point-in-time recovery is required (RPO 5 minutes)"
    )
    yield from setting_rule(
        "CO006", model, regulated(model), "database.cross_region_copy", lambda v: v is True, "snapshots must be copied to the DR region"
    )
