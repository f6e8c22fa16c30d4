"""``companyos remove-tenant``: take a tenant out of the catalog and print what a human must do."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from generator import pipeline
from generator.catalog.folders import find_root
from generator.errors import UsageError
from generator.lifecycle.request import answers_path
from generator.lifecycle.transaction import (
    Progress,
    allocate_networks,
    render_tracked,
    transaction,
)
from generator.model import organization as orgmodel
from generator.model.resolve import Model, resolve
from generator.output import tree

#: Removed tenants' accounts, kept in OU suspended until closed (model/organization.py).
RETIRED_PATH = "catalog/retired-accounts.yaml"
RETIRED_HEADER = (
    "# Accounts of removed tenants (written by `companyos remove-tenant`): the org root keeps them in\n"
    "# OU suspended (deny-all SCP) until a human closes them; see docs/governance.md for the checklist.\n"
)


@dataclass
class RemoveResult:
    name: str
    tier: str
    dedicated: bool
    removed: list[str]
    released: list[str]
    report: tree.WriteReport
    checklist: list[str]
    #: Accounts moved to OU suspended (recorded in catalog/retired-accounts.yaml).
    retired: list[str] = field(default_factory=list)


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
    retiring = retired_entries(model, name)
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
        if retiring:
            path = root / RETIRED_PATH
            tx.write(RETIRED_PATH, _with_retired(path.read_text(encoding="utf-8") if path.is_file() else "", retiring).encode())
        released = allocate_networks(root, tx)
        _, report = render_tracked(root, tx)
    retired = [f"{e['name']} ({e.get('account', 'vended, id not recorded')}) -> OU {orgmodel.SUSPENDED_OU}" for e in retiring]
    return RemoveResult(name, tenant.tier, dedicated, removed, released, report, checklist, retired)


def retired_entries(model: Model, name: str) -> list[dict[str, str]]:
    """The org root's accounts of tenant ``name`` as catalog/retired-accounts.yaml entries: the
    name and e-mail they were created with and the id when the catalog knows it."""
    org, _ = orgmodel.layout(model)
    if org is None:
        return []
    tenant = model.catalog.tenants[name].spec
    out = []
    for a in org.accounts:
        if not a.tenant or a.retired or a.role != name:
            continue
        entry = {"tenant": name, "environment": a.env}
        account = a.adopt or tenant.vended_accounts.get(a.env)
        if account:
            entry["account"] = account
        entry |= {"name": a.name, "email": a.email, "owner": tenant.owner, "cost_center": tenant.cost_center}
        out.append(entry)
    return out


def _with_retired(text: str, entries: list[dict[str, str]]) -> str:
    """``text`` (the record, or empty) with ``entries`` appended; comments and order kept."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    data = yaml.load(text) if text.strip() else None
    if data is None:
        data = CommentedMap()
    seq = data.setdefault("accounts", CommentedSeq())
    for e in entries:
        seq.append(CommentedMap({k: DoubleQuotedScalarString(v) if k == "account" else v for k, v in e.items()}))
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue() if text.strip() else RETIRED_HEADER + out.getvalue()


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
        label = f"of {d.name}/{d.env} (vended; its id is in the org root's state)" if d.account_pending else d.account_id
        where = f"account {label}" + ("" if d.dedicated else f" (pool of tier '{d.tier.name}')")
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
                f"[{d.env}] account closure: the account stays in the organization, moved to OU {orgmodel.SUSPENDED_OU} (deny-all SCP) "
                f"and recorded in {RETIRED_PATH}; once retention ends and its resources are gone (deletion protection and "
                f"object lock keep them until then; the VPC range is already released for reuse), close AWS account {label} "
                "(`aws organizations close-account`), then `terraform state rm "
                f"aws_organizations_account.{orgmodel.slug(d.name, d.env)}` in rendered/terraform/{orgmodel.ORG_ROOT} "
                f"and delete its entry from {RETIRED_PATH} in one PR"
            )
    add("budget and cost reports: confirm the tenant's budget alerts stopped and its cost center is closed")
    return items
