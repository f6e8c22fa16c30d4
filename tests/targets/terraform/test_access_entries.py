"""EKS access entries for tenant teams (targets/terraform/access_entries.py): the shared root
maps each tenant's Identity Center role (permission set ``tenant-<name>-eks``, assigned by the
org root in the shared-services accounts) to the group the namespace RoleBinding names."""

from __future__ import annotations

import json
import re
from typing import Any

import hcl2
import yaml

from generator import pipeline
from generator.ops.parse_memo import unquote
from generator.targets.argocd import target as argocd
from generator.targets.terraform import access_entries
from generator.vendor import VENDOR_DIR
from helpers.identity import identity_text

IDENTITY = "rendered/terraform/org/identity.tf"


def _of(doc: dict[str, Any], kind: str, rtype: str) -> dict[str, dict[str, Any]]:
    return {n: b for block in doc.get(kind, []) for t, named in block.items() if t == rtype for n, b in named.items()}


def test_access_tf_uses_only_real_provider_arguments(sample: pipeline.Build) -> None:
    schema = json.loads((VENDOR_DIR / "terraform" / "aws-provider-resources.json").read_text())
    for env in sample.model.environments:
        doc = unquote(hcl2.loads(sample.result.files[f"rendered/terraform/{env.name}/shared/access.tf"].decode()))
        entry = _of(doc, "resource", "aws_eks_access_entry")["tenant_team"]
        roles = _of(doc, "data", "aws_iam_roles")["tenant_team"]
        assert set(entry) - {"for_each"} <= set(schema["resources"]["aws_eks_access_entry"]["arguments"])
        assert set(schema["resources"]["aws_eks_access_entry"]["required"]) <= set(entry)
        assert set(roles) - {"for_each"} <= set(schema["data_sources"]["aws_iam_roles"]["arguments"])
        assert entry["type"] == "STANDARD" and entry["kubernetes_groups"] == ["${each.value.group}"]
        assert roles["path_prefix"] == access_entries.SSO_PATH


def test_each_record_names_the_group_of_the_tenants_rolebinding_and_a_set_the_org_root_assigns(sample: pipeline.Build) -> None:
    files = sample.result.files
    identity = unquote(hcl2.loads(identity_text(files)))
    sets = {b["name"]: n for n, b in _of(identity, "resource", "aws_ssoadmin_permission_set").items()}
    assignments = _of(identity, "resource", "aws_ssoadmin_account_assignment").values()
    checked = 0
    for d in sample.model.deployments:
        record = json.loads(files[f"rendered/terraform/{d.env}/shared/tenants/{d.name}.json"])
        docs = [x for x in yaml.safe_load_all(files[argocd.namespace_path(d.env, d.name)].decode()) if x]
        binding = next(x for x in docs if x["kind"] == "RoleBinding")
        assert [s["name"] for s in binding["subjects"] if s["kind"] == "Group"] == [record["team"]["group"]]
        key = sets[record["team"]["permission_set"]]
        targets = {a["target_id"] for a in assignments if a["permission_set_arn"] == f"${{aws_ssoadmin_permission_set.{key}.arn}}"}
        assert f"${{aws_organizations_account.shared_services__{d.env}.id}}" in targets
        policy = json.loads(json.loads(f'"{_of(identity, "resource", "aws_ssoadmin_permission_set_inline_policy")[key]["inline_policy"]}"'))
        assert [st["Action"] for st in policy["Statement"]] == [["eks:DescribeCluster"]]
        assert any(r.endswith(f":cluster/{sample.model.platform.organization}-{d.env}") for r in policy["Statement"][0]["Resource"])
        checked += 1
    assert checked == len(sample.model.deployments)


def test_the_name_regex_finds_only_the_tenants_own_role() -> None:
    def regex(tenant: str) -> re.Pattern[str]:
        return re.compile("^AWSReservedSSO_" + access_entries.permission_set(tenant) + "_[0-9a-f]+$")

    assert regex("acme").match("AWSReservedSSO_tenant-acme-eks_0123456789abcdef")
    assert not regex("acme").match("AWSReservedSSO_tenant-acme-eks-eks_0123456789abcdef")  # tenant "acme-eks"
    assert not regex("acme").match("AWSReservedSSO_tenant-acme_0123456789abcdef")  # the read-only set
    assert len(access_entries.permission_set("a" * 20)) <= 32
