"""Organization-wide audit and compliance in the organization root (``audit.tf``).

An organization CloudTrail (management account) writes to an object-locked (COMPLIANCE),
KMS-encrypted bucket in log-archive; AWS Config, Security Hub and GuardDuty are delegated to
the audit account and auto-enabled for every member. Their service principals must be
enabled on the organization, so this file manages ``aws_organizations_organization`` too
(adopted by an ``import`` block, never created). Each account's Config recorder is in the
root that owns the account (config_recorder.py); the log bucket and its key admit Config from
this organization (``aws:SourceOrgID``) on top of the literal CloudTrail policies.
"""

from __future__ import annotations

import json
from typing import Any

from generator.model import naming
from generator.model import organization as orgmodel
from generator.model.resolve import Model
from generator.targets.common import ORG_LOG_CONFIG_PREFIX, org_log_bucket

FILENAME = "audit.tf"
LOG_ARCHIVE = "log_archive"
AUDIT = "audit"
#: Every service the organization integrates with: a principal missing here is disabled by
#: the plan, so Identity Center (identity.tf) is listed with the audit services.
SERVICE_PRINCIPALS = (
    "cloudtrail.amazonaws.com",
    "config-multiaccountsetup.amazonaws.com",
    "config.amazonaws.com",
    "guardduty.amazonaws.com",
    "securityhub.amazonaws.com",
    "sso.amazonaws.com",
)
POLICY_TYPES = ("SERVICE_CONTROL_POLICY", "TAG_POLICY")
#: Services delegated to the audit account through Organizations (Security Hub and GuardDuty
#: register their own delegated administrator).
DELEGATED = ("config.amazonaws.com", "config-multiaccountsetup.amazonaws.com")
#: Security Hub standards (regional ARNs): AWS Foundational Security Best Practices and CIS.
STANDARDS = {
    "fsbp": "arn:aws:securityhub:{region}::standards/aws-foundational-security-best-practices/v/1.0.0",
    "cis": "arn:aws:securityhub:{region}::standards/cis-aws-foundations-benchmark/v/1.4.0",
}
#: AWS Config managed rules deployed to every account (rule key -> identifier).
RULES = {
    "encrypted_volumes": "ENCRYPTED_VOLUMES",
    "s3_bucket_public_read_prohibited": "S3_BUCKET_PUBLIC_READ_PROHIBITED",
    "rds_storage_encrypted": "RDS_STORAGE_ENCRYPTED",
    "cloud_trail_enabled": "CLOUD_TRAIL_ENABLED",
}
#: REQUIRED_TAGS takes at most six keys (tag1Key..tag6Key); more become further rules.
REQUIRED_TAGS_PER_RULE = 6
#: Object-lock floor: trail logs are kept at least a year even if every environment keeps its
#: logs for less; otherwise the longest ``log_retention.max_days`` of any environment.
MIN_RETENTION_DAYS = 365
AGGREGATOR_POLICY = "arn:aws:iam::aws:policy/service-role/AWSConfigRoleForOrganizations"


def providers(model: Model) -> list[tuple[str, str, str, str, str]]:
    """(alias, region, account, role ARN, session) of the log-archive and audit providers."""
    platform = model.platform
    settings = platform.aws_organization
    if settings is None:
        return []
    region = platform.terraform_state.region
    return [
        (
            alias,
            region,
            account,
            naming.account_role_arn(account, platform),
            f"{platform.organization}-{orgmodel.ORG_ROOT}-{alias.replace('_', '-')}",
        )
        for alias, account in ((LOG_ARCHIVE, settings.log_archive_account), (AUDIT, settings.audit_account))
    ]


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, separators=(",", ":"))


def retention_days(model: Model) -> int:
    return max([MIN_RETENTION_DAYS, *(e.log_retention.max_days for e in model.environments)])


def context(model: Model, org: orgmodel.Organization) -> dict[str, Any]:
    """Names, ARNs and the policy documents of audit.tf."""
    platform = model.platform
    settings = org.settings
    assert settings is not None
    region = platform.terraform_state.region
    management = org.management_account
    log_archive = settings.log_archive_account
    trail = f"{platform.organization}-organization"
    trail_arn = f"arn:aws:cloudtrail:{region}:{management}:trail/{trail}"
    bucket = org_log_bucket(platform)
    assert bucket is not None
    source = {"StringEquals": {"aws:SourceArn": trail_arn}}
    key_policy = _policy(
        {
            "Sid": "LogArchiveAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{log_archive}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "CloudTrailEncrypts",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:GenerateDataKey*",
            "Resource": "*",
            "Condition": {
                **source,
                "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{management}:trail/*"},
            },
        },
        {
            "Sid": "CloudTrailDescribes",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:DescribeKey",
            "Resource": "*",
            "Condition": source,
        },
        {
            "Sid": "AuditReads",
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{log_archive}:root", f"arn:aws:iam::{settings.audit_account}:root"]},
            "Action": ["kms:Decrypt", "kms:ReEncryptFrom"],
            "Resource": "*",
            "Condition": {"Null": {"kms:EncryptionContext:aws:cloudtrail:arn": "false"}},
        },
    )
    bucket_arn = f"arn:aws:s3:::{bucket}"
    bucket_policy = _policy(
        {
            "Sid": "CloudTrailAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": bucket_arn,
            "Condition": source,
        },
        {
            "Sid": "CloudTrailWrite",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/AWSLogs/*",
            "Condition": {"StringEquals": {"aws:SourceArn": trail_arn, "s3:x-amz-acl": "bucket-owner-full-control"}},
        },
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )
    tags = list(settings.required_tags)
    chunks = [tags[i : i + REQUIRED_TAGS_PER_RULE] for i in range(0, len(tags), REQUIRED_TAGS_PER_RULE)]
    required = [
        {
            "key": "required_tags" if i == 0 else f"required_tags_{i + 1}",
            "name": f"{platform.organization}-required-tags" + ("" if i == 0 else f"-{i + 1}"),
            "parameters": json.dumps({f"tag{j + 1}Key": tag for j, tag in enumerate(chunk)}, separators=(",", ":")),
        }
        for i, chunk in enumerate(chunks)
    ]
    return {
        "organization": platform.organization,
        "principals": list(SERVICE_PRINCIPALS),
        "policy_types": list(POLICY_TYPES),
        "delegated": [{"key": p.split(".")[0].replace("-", "_"), "principal": p} for p in DELEGATED],
        "audit_account": settings.audit_account,
        "log_archive_account": log_archive,
        "trail": trail,
        "bucket": bucket,
        "retention_days": retention_days(model),
        "key_policy": key_policy,
        "bucket_policy": bucket_policy,
        "config_prefix": ORG_LOG_CONFIG_PREFIX,
        "required_tags": required,
        "rules": [{"key": k, "name": f"{platform.organization}-{k.replace('_', '-')}", "id": v} for k, v in RULES.items()],
        "standards": {k: v.format(region=region) for k, v in STANDARDS.items()},
        "aggregator_policy": AGGREGATOR_POLICY,
        "log_archive": LOG_ARCHIVE,
        "audit": AUDIT,
    }


def budgets(model: Model, org: orgmodel.Organization) -> dict[str, dict[str, Any]]:
    """Per live tenant account (by Terraform address): a payer-side budget on the whole linked
    account, with the tenant's own budget settings, that tells the tenant owner. It sees spend
    the in-account budget of the tenant root (tag-filtered) cannot, such as untagged resources."""
    by_key = {(d.name, d.env): d for d in model.deployments}
    out = {}
    for account in org.accounts:
        d = by_key.get((account.role, account.env))
        if not account.tenant or account.retired or d is None:
            continue
        budget = d.settings.budget
        out[account.address] = {
            "name": f"{account.name}-account",
            "amount": str(budget.monthly_usd),
            "thresholds": sorted(set(budget.alert_thresholds)),
            "notify": sorted({d.tenant.owner, *budget.notify}),
        }
    return out


def budget_sources(model: Model, tenant: str) -> list[str]:
    """The catalog files a tenant's budgets are layered from (tier and defaults included)."""
    return sorted({s for d in model.deployments if d.name == tenant for s in d.sources})
