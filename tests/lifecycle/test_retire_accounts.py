"""`remove-tenant` never closes an account: it records the tenant's accounts in
catalog/retired-accounts.yaml, the org root keeps them (OU suspended, prevent_destroy), and the
checklist says how a human closes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2
import yaml
from hcl2 import SerializationOptions

from helpers.repo import snapshot
from helpers.tenants import OWNER

PLAIN = SerializationOptions(strip_string_quotes=True, with_comments=False)
ORG = "rendered/terraform/org"
ACME = {"dev": "210000000101", "stage": "310000000101", "prod": "410000000101"}


def org_file(repo: Path, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = hcl2.loads((repo / ORG / name).read_text(), serialization_options=PLAIN)
    return loaded


def accounts(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        n: b
        for block in doc.get("resource", [])
        for t, named in block.items()
        if t == "aws_organizations_account"
        for n, b in named.items()
    }


def test_removed_tenant_accounts_move_to_suspended_and_stay(git_repo: Path, companyos: Any) -> None:
    res = companyos("remove-tenant", "acme", "--acknowledge-data-retention", cwd=git_repo)
    assert res.code == 0, res.err
    record = yaml.safe_load((git_repo / "catalog/retired-accounts.yaml").read_text())["accounts"]
    assert {(r["environment"], r["account"]) for r in record} == set(ACME.items())
    assert all(r["tenant"] == "acme" and r["name"] == f"companyos-acme-{r['environment']}" for r in record)
    for env, account in ACME.items():
        assert f"account   companyos-acme-{env} ({account}) -> OU suspended" in res.out
        assert f"aws_organizations_account.acme__{env}` in rendered/terraform/org" in res.out
    doc = org_file(git_repo, "tenant-acme.tf")
    kept = accounts(doc)
    assert set(kept) == {f"acme__{e}" for e in ACME}, "same addresses: the plan moves them, destroys none"
    for body in kept.values():
        assert body["parent_id"] == "${aws_organizations_organizational_unit.suspended.id}"
        assert body["close_on_deletion"] is False
        assert body["lifecycle"][0]["prevent_destroy"] is True
        assert {"name", "email"} <= set(body["lifecycle"][0]["ignore_changes"])
        assert "role_name" not in body
    assert "import" not in doc and "output" not in doc  # in state already; no root reads it any more
    main = org_file(git_repo, "policies.tf")
    suspended = [
        p for block in main.get("resource", []) for t, n in block.items() if t == "aws_organizations_policy_attachment" for p in n.values()
    ]
    assert any("suspended" in str(p["target_id"]) for p in suspended), "the deny-all SCP is on the OU"
    assert companyos("check", cwd=git_repo).code == 0


def test_a_retired_account_cannot_be_claimed_by_a_new_tenant(git_repo: Path, companyos: Any) -> None:
    assert companyos("remove-tenant", "acme", "--acknowledge-data-retention", cwd=git_repo).code == 0
    umbrella = git_repo / "tenants/umbrella.yaml"
    text = umbrella.read_text()
    data = yaml.safe_load(text)
    env = next(iter(data["accounts"]))
    before = snapshot(git_repo)
    umbrella.write_text(text.replace(data["accounts"][env], ACME[env]))
    res = companyos("check", cwd=git_repo)
    assert res.code == 2
    assert f"account {ACME[env]} of tenant 'umbrella' already belongs to the retired account acme/{env}" in res.err + res.out
    umbrella.write_text(text)
    assert snapshot(git_repo) == before


def test_removing_a_vended_tenant_keeps_its_accounts_without_ids(git_repo: Path, companyos: Any) -> None:
    res = companyos("new-tenant", "foo", "--tier", "regulated", "--environments", "dev,prod", *OWNER, "--no-input", cwd=git_repo)
    assert res.code == 0, res.err
    res = companyos("remove-tenant", "foo", "--acknowledge-data-retention", cwd=git_repo)
    assert res.code == 0, res.err
    record = yaml.safe_load((git_repo / "catalog/retired-accounts.yaml").read_text())["accounts"]
    assert [(r["environment"], "account" in r) for r in record] == [("dev", False), ("prod", False)]
    assert "<account:" not in res.out
    assert "account   companyos-foo-dev (vended, id not recorded) -> OU suspended" in res.out
    kept = accounts(org_file(git_repo, "tenant-foo.tf"))
    assert set(kept) == {"foo__dev", "foo__prod"}
    assert all(b["parent_id"] == "${aws_organizations_organizational_unit.suspended.id}" for b in kept.values())
    assert not (git_repo / "rendered/terraform/dev/tenant-foo").exists()
    assert companyos("check", cwd=git_repo).code == 0


def test_a_retired_account_at_a_live_accounts_address_is_refused(git_repo: Path, companyos: Any) -> None:
    """A tenant that comes back under its old name would give its live accounts the retired
    ones' Terraform addresses: refused at the retired entry's line (one address, one account)."""
    kept = {rel: (git_repo / rel).read_text() for rel in ("tenants/acme.yaml", "catalog/networks.yaml")}
    assert companyos("remove-tenant", "acme", "--acknowledge-data-retention", cwd=git_repo).code == 0
    for rel, text in kept.items():  # acme back (new accounts), with its network allocation
        (git_repo / rel).write_text(text.replace("0000000101", "0000000999"))
    before = snapshot(git_repo)
    res = companyos("check", cwd=git_repo)
    assert res.code == 2
    for env in ACME:
        assert f"retired account acme/{env} has the Terraform address of a live account (acme__{env})" in res.err + res.out
    assert "catalog/retired-accounts.yaml:" in res.err + res.out
    assert snapshot(git_repo) == before
