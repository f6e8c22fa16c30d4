"""AWS Config recorders (config.tf of the org, shared, pool and dedicated tenant roots): exactly
one recorder per account and region across every root, global resource types recorded once
per account, delivery to the org log bucket whose policy admits exactly those accounts.
Parsed with python-hcl2 and checked against the AWS provider argument data."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

from generator import pipeline, vendor
from generator.model.resolve import Model
from generator.targets.common import org_log_bucket
from generator.targets.terraform import config_recorder
from helpers.catalog_edit import edit_yaml

TERRAFORM = "rendered/terraform/"
VALIDATE_TF = Path(vendor.__file__).parent / "tools" / "validate_tf.py"
OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)


def _blocks(doc: dict[str, Any], kind: str, rtype: str) -> dict[str, dict[str, Any]]:
    return {name: body for block in doc.get(kind, []) for t, named in block.items() if t == rtype for name, body in named.items()}


def _terraform(build: pipeline.Build) -> dict[str, str]:
    return {p: d.decode() for p, d in build.result.files.items() if p.startswith(TERRAFORM) and p.endswith(".tf")}


def _providers(text: str) -> dict[str, tuple[str, str]]:
    """Provider reference (``${aws}`` / ``${aws.alias}``) -> (account, region) from providers.tf."""
    out = {}
    for block in hcl2.loads(text, serialization_options=OPTIONS).get("provider", []):
        for body in block.values():
            ref = "${aws." + body["alias"] + "}" if "alias" in body else "${aws}"
            out[ref] = (body["allowed_account_ids"][0], body["region"])
    return out


def recorders(files: dict[str, str]) -> dict[tuple[str, str], list[tuple[str, str, bool]]]:
    """(account, region) -> [(root, recorder, include_global_resource_types)] over every root."""
    found: dict[tuple[str, str], list[tuple[str, str, bool]]] = defaultdict(list)
    for path, text in sorted(files.items()):
        if not path.endswith(f"/{config_recorder.FILENAME}"):
            continue
        root = path.rsplit("/", 1)[0]
        providers = _providers(files[f"{root}/providers.tf"])
        doc = hcl2.loads(text, serialization_options=OPTIONS)
        for name, body in _blocks(doc, "resource", "aws_config_configuration_recorder").items():
            account, default_region = providers[body.get("provider", "${aws}")]
            region = body.get("region", default_region)
            group = body["recording_group"][0]
            found[(account, region)].append((root, name, group["include_global_resource_types"]))
    return found


def duplicates(files: dict[str, str]) -> list[str]:
    """Every account and region with more than one recorder, or an account whose global
    resource types are recorded more than once (AWS allows one recorder per account and region)."""
    found = recorders(files)
    problems = [f"{a} {r}: {where}" for (a, r), where in found.items() if len(where) > 1]
    by_account: dict[str, list[str]] = defaultdict(list)
    for (account, region), where in found.items():
        by_account[account] += [f"{root}:{name}@{region}" for root, name, g in where if g]
    problems += [f"{a} global types: {where}" for a, where in by_account.items() if len(where) != 1]
    return problems


def expected_accounts(model: Model) -> set[str]:
    """Every account some root deploys to: the org's own, each environment's shared-services and
    pool accounts, dr-verify where DR is enabled, every dedicated tenant's."""
    platform = model.platform
    found = {account for _, account in config_recorder.org_accounts(platform)}
    for env in model.environments:
        found |= {env.accounts.shared_services, *env.accounts.pools.values()}
        if env.disaster_recovery is not None:
            found.add(env.accounts.dr_verify)
    return found | {d.account_id for d in model.deployments if d.dedicated}


def test_every_account_has_exactly_one_recorder_per_region(sample):
    files = _terraform(sample)
    found = recorders(files)
    assert duplicates(files) == []
    recorded = {account for account, _ in found}
    assert recorded == expected_accounts(sample.model)
    # every account any root deploys into (any provider of any root) is recorded
    deployed = {a for p, t in files.items() if p.endswith("/providers.tf") for a, _ in _providers(t).values()}
    assert deployed <= recorded, sorted(deployed - recorded)
    platform = sample.model.platform
    org = platform.aws_organization
    assert org is not None
    owners = {account: {root for (a, _), where in found.items() if a == account for root, _, _ in where} for account in recorded}
    for account in (platform.management_account, org.log_archive_account, org.audit_account):
        assert owners[account] == {"rendered/terraform/org"}
    for env in sample.model.environments:
        shared = f"rendered/terraform/{env.name}/shared"
        assert owners[env.accounts.shared_services] == {shared}
        if env.disaster_recovery is not None:  # dr.tf reaches dr-verify only then
            assert owners[env.accounts.dr_verify] == {shared}
            assert found[(env.accounts.dr_verify, env.aws.dr_region)][0][2] is True  # its only region: globals there
        else:
            assert env.accounts.dr_verify not in recorded
        assert found[(env.accounts.shared_services, env.aws.dr_region)][0][2] is False
        for tier, account in env.accounts.pools.items():
            assert owners[account] == {f"rendered/terraform/{env.name}/pool-{tier}"}
    pooled = [d for d in sample.model.deployments if not d.dedicated]
    assert pooled, "the sample has pooled tenants"
    for d in pooled:  # the pool root records their account, their own root nothing
        assert f"rendered/terraform/{d.env}/tenant-{d.name}/{config_recorder.FILENAME}" not in files


def test_a_planted_duplicate_recorder_is_caught(sample):
    files = _terraform(sample)
    d = next(d for d in sample.model.deployments if not d.dedicated)
    pool = f"rendered/terraform/{d.env}/pool-{d.tier.name}"
    files[f"rendered/terraform/{d.env}/tenant-{d.name}/{config_recorder.FILENAME}"] = files[f"{pool}/{config_recorder.FILENAME}"]
    problems = duplicates(files)
    assert any(p.startswith(f"{d.account_id} {d.environment.aws.region}:") for p in problems), problems
    assert any(p.startswith(f"{d.account_id} global types:") for p in problems), problems


def test_recorders_deliver_to_the_org_bucket_and_use_the_service_linked_role(sample):
    files = _terraform(sample)
    bucket = org_log_bucket(sample.model.platform)
    for path, text in files.items():
        if not path.endswith(f"/{config_recorder.FILENAME}"):
            continue
        doc = hcl2.loads(text, serialization_options=OPTIONS)
        recs = _blocks(doc, "resource", "aws_config_configuration_recorder")
        channels = _blocks(doc, "resource", "aws_config_delivery_channel")
        status = _blocks(doc, "resource", "aws_config_configuration_recorder_status")
        roles = _blocks(doc, "resource", "aws_iam_service_linked_role")
        assert recs and set(recs) == set(channels) == set(status), path
        assert all(r["aws_service_name"] == "config.amazonaws.com" for r in roles.values())
        for name, rec in recs.items():
            assert rec["recording_group"][0]["all_supported"] is True
            role = rec["role_arn"].removeprefix("${aws_iam_service_linked_role.").removesuffix(".arn}")
            assert role in roles, (path, name)
            channel = channels[name]
            assert channel["s3_bucket_name"] == bucket and channel["s3_key_prefix"] == "config"
            assert channel.get("provider") == rec.get("provider") == status[name].get("provider")
            assert status[name]["is_enabled"] is True
            assert f"aws_config_configuration_recorder.{name}" in channel["depends_on"][0]


def test_org_bucket_and_key_admit_config_from_this_organization_only(sample):
    files = _terraform(sample)
    doc = hcl2.loads(files["rendered/terraform/org/audit.tf"], serialization_options=OPTIONS)
    documents = _blocks(doc, "data", "aws_iam_policy_document")
    assert (
        _blocks(doc, "resource", "aws_s3_bucket_policy")["cloudtrail"]["policy"] == "${data.aws_iam_policy_document.cloudtrail_bucket.json}"
    )
    assert _blocks(doc, "resource", "aws_kms_key")["cloudtrail"]["policy"] == "${data.aws_iam_policy_document.cloudtrail_key.json}"
    statements = {s["sid"]: s for d in ("cloudtrail_key", "cloudtrail_bucket") for s in documents[d]["statement"]}
    assert set(statements) == {"ConfigEncrypts", "ConfigAclCheck", "ConfigWrite"}
    for sid, s in statements.items():
        assert [(p["type"], p["identifiers"]) for p in s["principals"]] == [("Service", ["config.amazonaws.com"])], sid
        conditions = {c["variable"]: c for c in s["condition"]}
        assert conditions["aws:SourceOrgID"]["values"] == ["${aws_organizations_organization.this.id}"], sid
        assert all(c["test"] == "StringEquals" for c in conditions.values()), sid
    write = statements["ConfigWrite"]
    assert write["actions"] == ["s3:PutObject"]
    assert write["resources"] == ["${aws_s3_bucket.cloudtrail.arn}/config/AWSLogs/*"]  # the channels' s3_key_prefix
    assert {c["variable"]: c["values"] for c in write["condition"]}["s3:x-amz-acl"] == ["bucket-owner-full-control"]
    # the literal CloudTrail documents underneath grant Config nothing
    for d in ("cloudtrail_key", "cloudtrail_bucket"):
        literal = json.loads(documents[d]["source_policy_documents"][0])
        assert "config.amazonaws.com" not in json.dumps(literal)
    # the org root's own channels wait for that policy
    org_doc = hcl2.loads(files["rendered/terraform/org/config.tf"], serialization_options=OPTIONS)
    for channel in _blocks(org_doc, "resource", "aws_config_delivery_channel").values():
        assert "${aws_s3_bucket_policy.cloudtrail}" in channel["depends_on"]


def test_config_files_pass_the_provider_argument_check(sample, tmp_path):
    files = _terraform(sample)
    roots = {p.rsplit("/", 1)[0] for p in files if p.endswith(f"/{config_recorder.FILENAME}")}
    for root in roots:
        for name in (config_recorder.FILENAME, "providers.tf"):
            out = tmp_path / root / name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(files[f"{root}/{name}"])
    run = subprocess.run([sys.executable, str(VALIDATE_TF), str(tmp_path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 findings" in run.stderr


def test_without_an_organization_no_recorder_is_rendered(repo):
    edit_yaml(repo / "catalog/platform.yaml", lambda d: d.pop("aws_organization"))
    files = _terraform(pipeline.build(repo))
    assert not [p for p in files if p.endswith(f"/{config_recorder.FILENAME}")]
