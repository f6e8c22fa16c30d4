"""``companyos remove-tenant``: take a tenant out of the catalog and print what a human must do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import pipeline
from generator.catalog.load import find_root
from generator.errors import UsageError
from generator.lifecycle.request import answers_path
from generator.lifecycle.transaction import (
    Progress,
    allocate_networks,
    render_tracked,
    transaction,
)
from generator.model.resolve import resolve
from generator.output import tree


@dataclass
class RemoveResult:
    name: str
    tier: str
    dedicated: bool
    removed: list[str]
    released: list[str]
    report: tree.WriteReport
    checklist: list[str]


def remove_tenant(
    root: Path | None, name: str, *, acknowledge_data_retention: bool = False, progress: Progress | None = None
) -> RemoveResult:
    """Delete the tenant's file and answers, release its networks and re-render (which
    prunes its generated files). Destroys no cloud resource: the returned checklist says
    what a human must do, in order."""
    root = find_root(root or Path.cwd())
    catalog = pipeline.load(root)
    entry = catalog.tenants.get(name)
    if entry is None:
        raise UsageError(f"unknown tenant '{name}' (known: {', '.join(sorted(catalog.tenants)) or 'none'})")
    model = resolve(catalog)  # not judged: a tenant that breaks a rule can still be removed
    tenant = entry.spec
    tier = catalog.tiers[tenant.tier].spec
    dedicated = tier.isolation == "dedicated"
    roots = sorted({str(e["root"]) for e in tree.read_manifest(root).values() if e.get("tenant") == name and e.get("root")})
    checklist = decommission_checklist(model, name, roots)
    if dedicated and not acknowledge_data_retention:
        raise UsageError(
            f"tenant '{name}' is on the dedicated tier '{tenant.tier}': its data is under retention "
            "(backups, object lock, logs) and its accounts must be closed by hand. Read the checklist "
            "below, then re-run with --acknowledge-data-retention; nothing was written.\n" + "\n".join(checklist)
        )
    with transaction(root, progress) as tx:
        removed = []
        for rel in (entry.path, answers_path(name)):
            if (root / rel).is_file():
                tx.delete(rel)
                removed.append(rel)
        released = allocate_networks(root, tx)
        _, report = render_tracked(root, tx)
    return RemoveResult(name, tenant.tier, dedicated, removed, released, report, checklist)


def decommission_checklist(model: Any, name: str, roots: Sequence[str] = ()) -> list[str]:
    """What must happen outside git, per environment, from the tenant's resolved settings."""
    deployments = [d for d in model.deployments if d.name == name]
    items = []
    n = 0

    def add(text: str) -> None:
        nonlocal n
        n += 1
        items.append(f"{n:>2}. {text}")

    if roots:
        add(
            f"review: this change removes the Terraform root(s) {', '.join(roots)} and the tenant's Argo CD applications; "
            "`companyos check --base <main>` reports that as destructive and CI needs the 'allow-destruction' PR label: "
            "add it only after the final snapshots below exist"
        )

    for d in deployments:
        s = d.settings
        where = f"account {d.account_id}" + ("" if d.dedicated else f" (pool of tier '{d.tier.name}')")
        add(
            f"[{d.env}] final snapshot: snapshot the tenant's database ({'its own RDS instance' if d.dedicated else 'its schema on the pooled instance: pg_dump'}) "
            f"in {where} and copy it to {d.environment.aws.dr_region}; record it in ops/backup-verification"
        )
        add(
            f"[{d.env}] retention: keep backups {s.database.backup_retention_days} days, logs {s.logs.retention_days} days"
            + (
                f", S3 objects under {s.storage.object_lock} object lock for {s.storage.object_lock_days} days"
                if s.storage.object_lock != "none"
                else ""
            )
            + "; schedule KMS key deletion only after the last of them expires"
        )
        add(
            f"[{d.env}] workloads: after the merge Argo CD prunes namespace {d.namespace}; confirm it is gone and delete the tenant's Secrets Manager entries"
        )
        if d.dedicated:
            add(
                f"[{d.env}] account closure: once retention ends and the account's resources are gone (deletion protection and "
                f"object lock keep them until then; the VPC range is already released for reuse), close AWS account {d.account_id} in AWS Organizations"
            )
    add("budget and cost reports: confirm the tenant's budget alerts stopped and its cost center is closed")
    return items
