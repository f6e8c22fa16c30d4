"""IAM Identity Center for tenant teams (targets/terraform/identity_center.py): one permission
set per tenant, assigned to its group only on the accounts holding its resources; a pooled
tenant's set reaches only resources tagged with its name, its logs and its secrets."""

from __future__ import annotations

import json
from typing import Any

import hcl2

from generator import pipeline
from generator.model import naming
from generator.ops.parse_memo import unquote
from generator.targets.terraform import identity_center
from generator.vendor import VENDOR_DIR
from helpers.identity import identity_text

IDENTITY = "rendered/terraform/org/identity.tf"
MAIN = "rendered/terraform/org/main.tf"


def _of(doc: dict[str, Any], kind: str, rtype: str) -> dict[str, dict[str, Any]]:
    return {n: b for block in doc.get(kind, []) for t, named in block.items() if t == rtype for n, b in named.items()}


def account_tags(main: str) -> dict[str, dict[str, str]]:
    """Terraform address -> tags of every account of the org root."""
    return {n: b["tags"] for n, b in _of(unquote(hcl2.loads(main)), "resource", "aws_organizations_account").items()}


def identity_findings(text: str, accounts: dict[str, dict[str, str]], tenants: dict[str, bool], org: str) -> list[str]:
    """What lets a tenant team beyond its own accounts or resources (tenants: name -> dedicated)."""
    doc = unquote(hcl2.loads(text))
    found: list[str] = []
    groups = _of(doc, "data", "aws_identitystore_group")
    sets = _of(doc, "resource", "aws_ssoadmin_permission_set")
    if set(sets) != set(tenants) | {f"{t}_eks" for t in tenants}:
        found.append(f"permission sets {sorted(sets)}")
    for tenant in tenants:
        value = groups.get(tenant, {}).get("alternate_identifier", [{}])[0].get("unique_attribute", [{}])[0].get("attribute_value")
        if value != naming.tenant_group_of(org, tenant):
            found.append(f"{tenant}: group {value}")
    for name, body in _of(doc, "resource", "aws_ssoadmin_account_assignment").items():
        tenant = body["permission_set_arn"].split(".")[1]
        account = body["target_id"].split(".")[1]
        owner = accounts[account]["tenant"]
        if tenant.endswith("_eks"):  # cluster access (access_entries.py): shared-services accounts only
            tenant = tenant.removesuffix("_eks")
            if owner != "shared-services" or body["principal_id"] != f"${{data.aws_identitystore_group.{tenant}.group_id}}":
                found.append(f"{name}: {tenant}'s cluster access on the account of {owner}")
            continue
        allowed = tenant if tenants[tenant] else "pool-"
        if not owner.startswith(allowed) or body["principal_id"] != f"${{data.aws_identitystore_group.{tenant}.group_id}}":
            found.append(f"{name}: {tenant} on the account of {owner}")
    for tenant, body in _of(doc, "resource", "aws_ssoadmin_permission_set_inline_policy").items():
        if tenant.endswith("_eks"):
            policy = json.loads(json.loads(f'"{body["inline_policy"]}"'))
            for st in policy["Statement"]:
                if st["Action"] != ["eks:DescribeCluster"] or any(not r.startswith("arn:aws:eks:") for r in st["Resource"]):
                    found.append(f"{tenant}: {st['Sid']} beyond describing a cluster")
            continue
        if tenants.get(tenant, True):
            found.append(f"{tenant}: inline policy on a dedicated tenant")
        policy = json.loads(json.loads(f'"{body["inline_policy"]}"'))  # an HCL string holding JSON
        for st in policy["Statement"]:
            resources = st.get("Resource", [])
            tag = st.get("Condition", {}).get("StringEquals", {}).get("aws:ResourceTag/tenant")
            if st["Effect"] == "Allow" and ("*" in resources or resources == "*") and tag != tenant:
                found.append(f"{tenant}: {st['Sid']} on every resource without its tenant tag")
            if st["Effect"] == "Allow" and any(a == "*" or a.endswith(":*") for a in st["Action"]):
                found.append(f"{tenant}: wildcard action in {st['Sid']}")
            for arn in resources if isinstance(resources, list) else []:
                if arn != "*" and f"/{tenant}" not in arn:
                    found.append(f"{tenant}: {st['Sid']} on {arn}")
    return found


def _inputs(sample: pipeline.Build) -> tuple[str, dict[str, dict[str, str]], dict[str, bool], str]:
    files = sample.result.files
    tenants = {d.name: d.dedicated for d in sample.model.deployments}
    return (
        identity_text(files),
        account_tags("\n".join(files[p].decode() for p in sorted(files) if p == MAIN or p.startswith("rendered/terraform/org/tenant-"))),
        tenants,
        sample.model.platform.organization,
    )


def test_every_tenant_team_is_assigned_only_its_own_accounts(sample: pipeline.Build) -> None:
    text, accounts, tenants, org = _inputs(sample)
    assert identity_findings(text, accounts, tenants, org) == []
    doc = unquote(hcl2.loads(text))
    assignments = _of(doc, "resource", "aws_ssoadmin_account_assignment")
    for tenant, dedicated in tenants.items():
        mine = {b["target_id"].split(".")[1] for b in assignments.values() if b["permission_set_arn"].split(".")[1] == tenant}
        envs = {d.env for d in sample.model.deployments if d.name == tenant}
        assert len(mine) == len(envs) if dedicated else mine, (tenant, mine)
        eks = {b["target_id"].split(".")[1] for b in assignments.values() if b["permission_set_arn"].split(".")[1] == f"{tenant}_eks"}
        assert eks == {f"shared_services__{e}" for e in envs}, (tenant, eks)
    managed = _of(doc, "resource", "aws_ssoadmin_managed_policy_attachment")
    assert {n for n, b in managed.items() if b["managed_policy_arn"] == identity_center.READ_ONLY} == {t for t, d in tenants.items() if d}


def test_planted_faults_are_caught(sample: pipeline.Build) -> None:
    text, accounts, tenants, org = _inputs(sample)
    dedicated = sorted(t for t, d in tenants.items() if d)
    first, second = dedicated[0], dedicated[1]
    wrong = text.replace(f"aws_organizations_account.{first}__prod.id", f"aws_organizations_account.{second}__prod.id", 1)
    assert identity_findings(wrong, accounts, tenants, org) == [f"{first}__{first}__prod: {first} on the account of {second}"]
    pooled = next(t for t, d in tenants.items() if not d)
    loose = text.replace(f'\\"aws:ResourceTag/tenant\\":\\"{pooled}\\"', '\\"aws:ResourceTag/tenant\\":\\"other\\"', 1)
    assert any("without its tenant tag" in f for f in identity_findings(loose, accounts, tenants, org))


def test_identity_resources_pass_the_provider_schema(sample: pipeline.Build) -> None:
    schema = json.loads((VENDOR_DIR / "terraform" / "aws-provider-resources.json").read_text())
    doc = unquote(hcl2.loads(identity_text(sample.result.files)))
    for kind, table in (("resource", schema["resources"]), ("data", schema["data_sources"])):
        for block in doc.get(kind, []):
            for rtype, named in block.items():
                for body in named.values():
                    args = set(body) - {"alternate_identifier"}
                    assert args <= set(table[rtype]["arguments"]), (rtype, args - set(table[rtype]["arguments"]))
                    assert set(table[rtype]["required"]) <= set(body), rtype


def test_identity_tf_names_no_tenant_and_each_tenant_has_its_own_file(sample: pipeline.Build) -> None:
    """Onboarding adds identity-<tenant>.tf and edits no shared line (issue 19: merge conflicts)."""
    files = sample.result.files
    shared = files[IDENTITY].decode()
    tenants = sorted({d.name for d in sample.model.deployments})
    assert not [t for t in tenants if f'"{t.replace("-", "_")}"' in shared or f"tenant-{t}" in shared]
    for tenant in tenants:
        doc = unquote(hcl2.loads(files[f"rendered/terraform/org/{identity_center.tenant_filename(tenant)}"].decode()))
        key = tenant.replace("-", "_")
        assert set(_of(doc, "resource", "aws_ssoadmin_permission_set")) == {key, f"{key}_eks"}
        assert set(_of(doc, "data", "aws_identitystore_group")) == {key}
