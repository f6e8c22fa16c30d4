"""Organization audit (rendered/terraform/org/audit.tf and the tenant budgets): an org-wide,
object-locked, KMS-encrypted CloudTrail in log-archive; Config, Security Hub and GuardDuty
delegated to audit; a payer-side budget per live tenant account. Checked with python-hcl2 and
the AWS provider argument data (generator/vendor/tools/validate_tf.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

from generator import pipeline, vendor
from generator.targets.terraform import audit
from helpers.catalog_edit import edit_yaml

ORG = "rendered/terraform/org"
VALIDATE_TF = Path(vendor.__file__).parent / "tools" / "validate_tf.py"
OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)


def org_docs(build: pipeline.Build) -> dict[str, dict[str, Any]]:
    files = {p: d.decode() for p, d in build.result.files.items() if p.startswith(f"{ORG}/")}
    return {Path(p).name: hcl2.loads(text, serialization_options=OPTIONS) for p, text in files.items()}


@pytest.fixture(scope="module")
def docs(sample: pipeline.Build) -> dict[str, dict[str, Any]]:
    return org_docs(sample)


def blocks(doc: dict[str, Any], kind: str, rtype: str) -> dict[str, dict[str, Any]]:
    return {name: body for block in doc.get(kind, []) for t, named in block.items() if t == rtype for name, body in named.items()}


def plain(block: dict[str, Any]) -> dict[str, Any]:
    """A block's attributes without python-hcl2's ``__is_block__`` marker."""
    return {k: v for k, v in block.items() if k != "__is_block__"}


def res(doc: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return blocks(doc, "resource", rtype)


def test_audit_file_is_rendered_and_passes_the_provider_argument_check(sample, tmp_path):
    files = {p: d for p, d in sample.result.files.items() if p.startswith(f"{ORG}/")}
    assert f"{ORG}/audit.tf" in files
    for path, data in files.items():
        (tmp_path / Path(path).name).write_bytes(data)
    run = subprocess.run([sys.executable, str(VALIDATE_TF), str(tmp_path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 findings" in run.stderr


def test_log_archive_and_audit_providers_are_pinned_to_their_accounts(sample, docs):
    settings = sample.model.platform.aws_organization
    providers = {p["aws"].get("alias"): p["aws"] for p in docs["providers.tf"]["provider"]}
    for alias, account in ((audit.LOG_ARCHIVE, settings.log_archive_account), (audit.AUDIT, settings.audit_account)):
        assert providers[alias]["allowed_account_ids"] == [account]
        assert providers[alias]["assume_role"][0]["role_arn"].startswith(f"arn:aws:iam::{account}:role/")
    assert providers[None]["allowed_account_ids"] == [sample.model.platform.management_account]


def test_organization_trail_covers_every_account_and_region_with_validation(docs):
    doc = docs["audit.tf"]
    trail = res(doc, "aws_cloudtrail")["organization"]
    assert trail["is_organization_trail"] is True
    assert trail["is_multi_region_trail"] is True
    assert trail["enable_log_file_validation"] is True
    assert trail["kms_key_id"] == "${aws_kms_key.cloudtrail.arn}"
    assert trail["s3_bucket_name"] == "${aws_s3_bucket.cloudtrail.id}"
    assert "provider" not in trail  # the management account creates organization trails
    for rtype in ("aws_s3_bucket", "aws_kms_key", "aws_s3_bucket_object_lock_configuration", "aws_s3_bucket_policy"):
        assert res(doc, rtype)["cloudtrail"]["provider"] == "${aws.log_archive}", rtype


def test_log_bucket_is_object_locked_in_compliance_mode_kms_encrypted_and_private(sample, docs):
    doc = docs["audit.tf"]
    bucket = res(doc, "aws_s3_bucket")["cloudtrail"]
    assert bucket["object_lock_enabled"] is True
    rule = res(doc, "aws_s3_bucket_object_lock_configuration")["cloudtrail"]["rule"][0]["default_retention"][0]
    longest = max(e.log_retention.max_days for e in sample.model.environments)
    assert plain(rule) == {"mode": "COMPLIANCE", "days": max(audit.MIN_RETENTION_DAYS, longest)}
    sse = res(doc, "aws_s3_bucket_server_side_encryption_configuration")["cloudtrail"]["rule"][0]
    assert plain(sse["apply_server_side_encryption_by_default"][0]) == {
        "sse_algorithm": "aws:kms",
        "kms_master_key_id": "${aws_kms_key.cloudtrail.arn}",
    }
    block = res(doc, "aws_s3_bucket_public_access_block")["cloudtrail"]
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"))
    assert res(doc, "aws_kms_key")["cloudtrail"]["enable_key_rotation"] is True


def test_object_lock_follows_the_longest_environment_log_retention(repo):
    edit_yaml(repo / "environments/prod.yaml", lambda d: d["log_retention"].update(max_days=2555))
    doc = org_docs(pipeline.build(repo))["audit.tf"]
    rule = res(doc, "aws_s3_bucket_object_lock_configuration")["cloudtrail"]["rule"][0]["default_retention"][0]
    assert rule["days"] == 2555


def test_key_and_bucket_policies_admit_cloudtrail_only_for_this_trail(sample, docs):
    doc = docs["audit.tf"]
    platform = sample.model.platform
    trail_arn = f"arn:aws:cloudtrail:{platform.terraform_state.region}:{platform.management_account}:trail/{res(doc, 'aws_cloudtrail')['organization']['name']}"
    # the literal CloudTrail documents, under the policy documents that add Config (config.tf)
    documents = blocks(doc, "data", "aws_iam_policy_document")
    assert res(doc, "aws_kms_key")["cloudtrail"]["policy"] == "${data.aws_iam_policy_document.cloudtrail_key.json}"
    assert res(doc, "aws_s3_bucket_policy")["cloudtrail"]["policy"] == "${data.aws_iam_policy_document.cloudtrail_bucket.json}"
    key = json.loads(documents["cloudtrail_key"]["source_policy_documents"][0])
    bucket = json.loads(documents["cloudtrail_bucket"]["source_policy_documents"][0])
    for statement in [*key["Statement"], *bucket["Statement"]]:
        if statement.get("Principal") == {"Service": "cloudtrail.amazonaws.com"}:
            assert statement["Condition"]["StringEquals"]["aws:SourceArn"] == trail_arn, statement["Sid"]
    encrypt = next(s for s in key["Statement"] if s["Action"] == "kms:GenerateDataKey*")
    assert encrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"].endswith(
        f":{platform.management_account}:trail/*"
    )
    write = next(s for s in bucket["Statement"] if s["Action"] == "s3:PutObject")
    assert write["Condition"]["StringEquals"]["s3:x-amz-acl"] == "bucket-owner-full-control"
    assert write["Resource"] == f"arn:aws:s3:::{res(doc, 'aws_s3_bucket')['cloudtrail']['bucket']}/AWSLogs/*"
    deny = next(s for s in bucket["Statement"] if s["Effect"] == "Deny")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_organization_is_adopted_with_every_service_principal_it_uses(docs):
    doc = docs["audit.tf"]
    organization = res(doc, "aws_organizations_organization")["this"]
    assert {
        "cloudtrail.amazonaws.com",
        "config.amazonaws.com",
        "config-multiaccountsetup.amazonaws.com",
        "securityhub.amazonaws.com",
        "guardduty.amazonaws.com",
        "sso.amazonaws.com",  # identity.tf: dropping it would disable Identity Center
    } <= set(organization["aws_service_access_principals"])
    assert organization["feature_set"] == "ALL"
    # the SCPs and tag policy of policies.tf need their policy types kept enabled
    assert set(organization["enabled_policy_types"]) == {"SERVICE_CONTROL_POLICY", "TAG_POLICY"}
    assert organization["lifecycle"][0]["prevent_destroy"] is True
    imports = {b["to"]: b["id"] for b in doc["import"]}
    assert imports["${aws_organizations_organization.this}"] == "${data.aws_organizations_organization.this.id}"
    delegated = res(doc, "aws_organizations_delegated_administrator")
    assert {d["service_principal"] for d in delegated.values()} == set(audit.DELEGATED)
    assert all(d["account_id"] == "${aws_organizations_account.audit.id}" for d in delegated.values())


def test_config_rules_require_the_catalog_tags_and_encryption(sample, docs):
    doc = docs["audit.tf"]
    rules = res(doc, "aws_config_organization_managed_rule")
    assert {r["rule_identifier"] for r in rules.values()} == {
        "REQUIRED_TAGS",
        "ENCRYPTED_VOLUMES",
        "S3_BUCKET_PUBLIC_READ_PROHIBITED",
        "RDS_STORAGE_ENCRYPTED",
        "CLOUD_TRAIL_ENABLED",
    }
    params = json.loads(rules["required_tags"]["input_parameters"])
    assert list(params.values()) == sample.model.platform.aws_organization.required_tags
    assert list(params) == [f"tag{i}Key" for i in range(1, len(params) + 1)]
    aggregator = res(doc, "aws_config_configuration_aggregator")["organization"]
    assert aggregator["provider"] == "${aws.audit}"
    assert plain(aggregator["organization_aggregation_source"][0]) == {
        "all_regions": True,
        "role_arn": "${aws_iam_role.config_aggregator.arn}",
    }
    attach = res(doc, "aws_iam_role_policy_attachment")["config_aggregator"]
    assert attach["policy_arn"] == audit.AGGREGATOR_POLICY and attach["provider"] == "${aws.audit}"


def test_required_tags_rule_follows_the_catalog(repo):
    edit_yaml(repo / "catalog/platform.yaml", lambda d: d["aws_organization"].update(required_tags=["tenant", "owner"]))
    rules = res(org_docs(pipeline.build(repo))["audit.tf"], "aws_config_organization_managed_rule")
    assert json.loads(rules["required_tags"]["input_parameters"]) == {"tag1Key": "tenant", "tag2Key": "owner"}


def test_security_hub_and_guardduty_are_delegated_to_audit_and_auto_enabled(sample, docs):
    doc = docs["audit.tf"]
    region = sample.model.platform.terraform_state.region
    for rtype in ("aws_securityhub_organization_admin_account", "aws_guardduty_organization_admin_account"):
        admin = res(doc, rtype)["audit"]
        assert admin["admin_account_id"] == "${aws_organizations_account.audit.id}"
        assert "provider" not in admin  # registered from the management account
    hub = res(doc, "aws_securityhub_organization_configuration")["this"]
    assert hub["auto_enable"] is True and hub["provider"] == "${aws.audit}"
    standards = {s["standards_arn"] for s in res(doc, "aws_securityhub_standards_subscription").values()}
    assert standards == {
        f"arn:aws:securityhub:{region}::standards/aws-foundational-security-best-practices/v/1.0.0",
        f"arn:aws:securityhub:{region}::standards/cis-aws-foundations-benchmark/v/1.4.0",
    }
    guardduty = res(doc, "aws_guardduty_organization_configuration")["this"]
    assert guardduty["auto_enable_organization_members"] == "ALL"
    assert guardduty["detector_id"] == "${data.aws_guardduty_detector.audit.id}"
    assert blocks(doc, "data", "aws_guardduty_detector")["audit"]["provider"] == "${aws.audit}"


def test_every_live_tenant_account_has_a_linked_account_budget_for_its_owner(sample, docs):
    dedicated = [d for d in sample.model.deployments if d.dedicated]
    assert dedicated
    for d in dedicated:
        doc = docs[f"tenant-{d.name}.tf"]
        address = f"{d.name}__{d.env}".replace("-", "_")
        budget = res(doc, "aws_budgets_budget")[address]
        assert budget["limit_amount"] == str(d.settings.budget.monthly_usd) and budget["time_unit"] == "MONTHLY"
        assert plain(budget["cost_filter"][0]) == {"name": "LinkedAccount", "values": [f"${{aws_organizations_account.{address}.id}}"]}
        thresholds = sorted(n["threshold"] for n in budget["notification"])
        assert thresholds == sorted(set(d.settings.budget.alert_thresholds))
        assert all(d.tenant.owner in n["subscriber_email_addresses"] for n in budget["notification"])
    pooled = {d.name for d in sample.model.deployments if not d.dedicated}
    assert not any(name.startswith(f"tenant-{p}.") for p in pooled for name in docs)


def test_budget_amount_follows_the_tenant_catalog(repo, sample):
    d = next(d for d in sample.model.deployments if d.dedicated)
    edit_yaml(repo / f"tenants/{d.name}.yaml", lambda y: y.setdefault("settings", {}).setdefault("budget", {}).update(monthly_usd=4321))
    build = pipeline.build(repo)
    budgets = res(org_docs(build)[f"tenant-{d.name}.tf"], "aws_budgets_budget")
    assert {b["limit_amount"] for b in budgets.values()} == {"4321"}
    assert re.search(r"of 4321 USD a month", build.result.files[f"{ORG}/tenant-{d.name}.tf"].decode())
