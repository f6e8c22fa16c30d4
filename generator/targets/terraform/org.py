"""The organization root ``rendered/terraform/org/``: OUs, accounts, SCPs and the tag policy.

One root for the whole organization, applied from the management account. Accounts the
catalog names by id are adopted with ``import`` blocks, never created twice; every account
has ``prevent_destroy``. Guardrail documents are rendered inline (``jsonencode``) and checked
against AWS's limits (5,120 characters per SCP, 5 SCPs per target), so a breach is an error
at the catalog line that grew it, not a failed apply. See docs/governance.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from generator.errors import CatalogError, CatalogErrors, Location
from generator.formats import emit
from generator.formats.templating import Templates
from generator.model import naming
from generator.model import organization as orgmodel
from generator.model.resolve import Model
from generator.targets.base import RenderedFile
from generator.targets.terraform import audit, config_recorder, identity_center, vended
from generator.targets.terraform.hcl import format_hcl
from generator.targets.terraform.modules import PROVIDERS, TERRAFORM_VERSION

NAME = "terraform-org"
DIR = f"rendered/terraform/{orgmodel.ORG_ROOT}"
STATE_KEY = f"{orgmodel.ORG_ROOT}/terraform.tfstate"
COMMON = ("versions.tf", "backend.tf", "providers.tf")
OWN = ("main.tf", "policies.tf", "outputs.tf", identity_center.FILENAME, audit.FILENAME)
ACCOUNT_MACRO = "terraform/org/_account.tf.j2"
TENANT_TEMPLATE = "terraform/org/tenant.tf.j2"
BUDGET_MACRO = "terraform/org/_budget.tf.j2"
#: AWS Organizations quotas: characters of one SCP (minified, as AWS counts), SCPs attached to
#: one root, OU or account (the AWS-managed FullAWSAccess counts as one), tag policy size.
SCP_MAX_CHARS = 5120
SCP_MAX_PER_TARGET = 5
TAG_POLICY_MAX_CHARS = 10000
#: Attached to every target unless removed; it takes one of the five SCP slots.
FULL_AWS_ACCESS = "FullAWSAccess"
SCP = "SERVICE_CONTROL_POLICY"
TAG_POLICY = "TAG_POLICY"
#: Security services no member account may stop or weaken (deny-listed actions).
SECURITY_ACTIONS = (
    "cloudtrail:DeleteTrail",
    "cloudtrail:PutEventSelectors",
    "cloudtrail:StopLogging",
    "cloudtrail:UpdateTrail",
    "config:DeleteConfigRule",
    "config:DeleteConfigurationRecorder",
    "config:DeleteDeliveryChannel",
    "config:StopConfigurationRecorder",
    "guardduty:DeleteDetector",
    "guardduty:DeleteMembers",
    "guardduty:DisassociateFromAdministratorAccount",
    "guardduty:DisassociateFromMasterAccount",
    "guardduty:StopMonitoringMembers",
    "guardduty:UpdateDetector",
    "securityhub:BatchDisableStandards",
    "securityhub:DeleteMembers",
    "securityhub:DisableSecurityHub",
    "securityhub:DisassociateFromAdministratorAccount",
    "securityhub:DisassociateFromMasterAccount",
)
#: Create calls of the core taggable resources that carry their tags in the request
#: (``aws:RequestTag``); S3 CreateBucket is left to the plan policy (rendered/policy).
TAGGED_CREATES: dict[str, str] = {
    "ec2:RunInstances": "arn:aws:ec2:*:*:instance/*",
    "ec2:CreateVolume": "arn:aws:ec2:*:*:volume/*",
    "rds:CreateDBInstance": "*",
    "rds:CreateDBCluster": "*",
    "elasticache:CreateReplicationGroup": "*",
    "kms:CreateKey": "*",
    "sqs:CreateQueue": "*",
    "sns:CreateTopic": "*",
    "secretsmanager:CreateSecret": "*",
    "eks:CreateCluster": "*",
}
#: Resource types the tag policy enforces its tag keys on.
TAG_ENFORCED_FOR = ("ec2:instance", "ec2:volume", "rds:db")


@dataclass(frozen=True)
class Policy:
    """One ``aws_organizations_policy`` with its JSON document and the OUs it is attached to."""

    key: str
    name: str
    type: str
    description: str
    document: dict[str, Any]
    targets: tuple[str, ...]
    at: Location

    @property
    def minified(self) -> str:
        """The document as ``jsonencode`` sends it (what AWS counts)."""
        return json.dumps(self.document, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Provider:
    alias: str | None
    region: str
    account: str
    role_arn: str
    session: str


@dataclass(frozen=True)
class OrgRoot:
    """What the shared versions/backend/providers templates read of a root."""

    dir: str
    providers: list[Provider]
    tags: dict[str, str]


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    org, errors = orgmodel.layout(model)
    if org is None:
        return
    policies = guardrails(model, org)
    errors += check_limits(policies)
    if errors:
        raise CatalogErrors(errors)
    yield from _files(model, templates, org, policies)


# --- guardrails -------------------------------------------------------------------------------


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _sid(text: str) -> str:
    return "".join(part.capitalize() for part in text.replace("_", "-").split("-"))


def _require_tag(tag: str, resource: str) -> dict[str, Any]:
    """Deny the creates on ``resource`` without ``tag``: one statement per resource pattern, as
    RunInstances also names subnets, images and interfaces, which carry no request tags."""
    suffix = "" if resource == "*" else _sid(resource.rsplit(":", 1)[1].split("/")[0])
    return {
        "Sid": f"DenyCreateWithout{_sid(tag)}{suffix}",
        "Effect": "Deny",
        "Action": sorted(action for action, on in TAGGED_CREATES.items() if on == resource),
        "Resource": resource,
        "Condition": {"Null": {f"aws:RequestTag/{tag}": "true"}},
    }


def guardrails(model: Model, org: orgmodel.Organization) -> list[Policy]:
    """The SCPs and the tag policy, each with the catalog location that shapes it."""
    settings = org.settings
    assert settings is not None
    p_entry = model.catalog.platform
    at_org = p_entry.locate("aws_organization", key=True)
    at_tags = p_entry.locate("aws_organization", "required_tags")
    env_ous = tuple(orgmodel.env_ou(e.name) for e in model.environments)
    root = orgmodel.ROOT_OU
    out = [
        Policy(
            "deny_leave_organization",
            f"{model.platform.organization}-deny-leave-organization",
            SCP,
            "No member account may leave the organization.",
            _doc({"Sid": "DenyLeaveOrganization", "Effect": "Deny", "Action": "organizations:LeaveOrganization", "Resource": "*"}),
            (root,),
            at_org,
        ),
        Policy(
            "deny_root_user",
            f"{model.platform.organization}-deny-root-user",
            SCP,
            "The root user of a member account may do nothing; use roles.",
            _doc(
                {
                    "Sid": "DenyRootUser",
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"}},
                }
            ),
            (root,),
            at_org,
        ),
        Policy(
            "protect_security_services",
            f"{model.platform.organization}-protect-security-services",
            SCP,
            "CloudTrail, Config, GuardDuty and Security Hub cannot be stopped or deleted.",
            _doc({"Sid": "ProtectSecurityServices", "Effect": "Deny", "Action": list(SECURITY_ACTIONS), "Resource": "*"}),
            (root,),
            at_org,
        ),
        Policy(
            "require_tags",
            f"{model.platform.organization}-require-tags",
            SCP,
            f"Core resources are created only with the tags {', '.join(settings.required_tags)}.",
            _doc(*(_require_tag(tag, resource) for tag in settings.required_tags for resource in sorted(set(TAGGED_CREATES.values())))),
            env_ous,
            at_tags,
        ),
        Policy(
            "deny_all_suspended",
            f"{model.platform.organization}-deny-all-suspended",
            SCP,
            "Accounts waiting for closure can do nothing.",
            _doc({"Sid": "DenyAll", "Effect": "Deny", "Action": "*", "Resource": "*"}),
            (orgmodel.SUSPENDED_OU,),
            at_org,
        ),
    ]
    for env in model.environments:
        out.append(
            Policy(
                orgmodel.slug("allowed_regions", env.name),
                f"{model.platform.organization}-{env.name}-allowed-regions",
                SCP,
                f"{env.name}: only {', '.join(env.aws.allowed_regions)}, plus global services.",
                _doc(
                    {
                        "Sid": "DenyOutsideAllowedRegions",
                        "Effect": "Deny",
                        "NotAction": list(orgmodel.GLOBAL_ACTIONS),
                        "Resource": "*",
                        "Condition": {"StringNotEquals": {"aws:RequestedRegion": list(env.aws.allowed_regions)}},
                    }
                ),
                (orgmodel.env_ou(env.name),),
                model.catalog.environments[env.name].locate("aws", "allowed_regions"),
            )
        )
    envs = sorted({e.name for e in model.environments} | {orgmodel.ORG_ROOT})
    tags: dict[str, Any] = {}
    for tag in settings.required_tags:
        rule: dict[str, Any] = {"tag_key": {"@@assign": tag}}
        if tag == "environment":
            rule["tag_value"] = {"@@assign": envs}
        rule["enforced_for"] = {"@@assign": list(TAG_ENFORCED_FOR)}
        tags[tag] = rule
    out.append(
        Policy(
            "tag_policy",
            f"{model.platform.organization}-tags",
            TAG_POLICY,
            "The mandatory tag keys (exact case) and environment values.",
            {"tags": tags},
            (root,),
            at_tags,
        )
    )
    return out


def check_limits(policies: list[Policy]) -> list[CatalogError]:
    """AWS quotas on the documents and on the SCPs attached to each root or OU."""
    errors = []
    for policy in policies:
        limit = SCP_MAX_CHARS if policy.type == SCP else TAG_POLICY_MAX_CHARS
        size = len(policy.minified)
        if size > limit:
            errors.append(
                CatalogError(
                    policy.at, f"{policy.type} '{policy.name}' is {size} characters; AWS allows {limit} (shorten the list this line sets)"
                )
            )
    per_target: dict[str, list[Policy]] = {}
    for policy in policies:
        if policy.type == SCP:
            for target in policy.targets:
                per_target.setdefault(target, []).append(policy)
    for target, attached in sorted(per_target.items()):
        if len(attached) + 1 > SCP_MAX_PER_TARGET:
            names = ", ".join([FULL_AWS_ACCESS, *(p.name for p in attached)])
            errors.append(
                CatalogError(
                    attached[-1].at, f"{len(attached) + 1} SCPs would be attached to {target} ({names}); AWS allows {SCP_MAX_PER_TARGET}"
                )
            )
    return errors


# --- files ------------------------------------------------------------------------------------


def _context(model: Model, org: orgmodel.Organization, policies: list[Policy]) -> dict[str, Any]:
    platform = model.platform
    state = platform.terraform_state
    account = org.management_account
    provider = Provider(
        None, state.region, account, naming.account_role_arn(account, platform), f"{platform.organization}-{orgmodel.ORG_ROOT}"
    )
    tags = {
        "environment": orgmodel.ORG_ROOT,
        "tenant": orgmodel.ORG_ROOT,
        "owner": platform.owner,
        "cost-center": platform.cost_center,
        "managed-by": emit.GENERATOR,
    }
    kms = state.kms_key_id
    if not kms.startswith("arn:"):
        kms = f"arn:aws:kms:{state.region}:{state.account}:{kms if kms.startswith('alias/') else 'key/' + kms}"
    return {
        "r": OrgRoot(DIR, [provider, *(Provider(*p) for p in audit.providers(model))], tags),
        "org": org,
        "policies": policies,
        "platform": platform,
        "terraform_version": TERRAFORM_VERSION,
        "providers": {"aws": PROVIDERS["aws"]},
        "state": {
            "bucket": state.bucket,
            "region": state.region,
            "dynamodb_table": state.dynamodb_table,
            "kms_key_id": kms,
            "role_arn": naming.account_role_arn(state.account, platform),
            "key": STATE_KEY,
        },
        "root_ou": orgmodel.ROOT_OU,
        "audit": audit.context(model, org),
        "budgets": audit.budgets(model, org),
        "session": identity_center.SESSION,
        "read_only": identity_center.READ_ONLY,
    }


def _sources(model: Model) -> list[str]:
    return [
        model.source("platform", "platform"),
        *(model.source("environment", e.name) for e in model.environments),
        *sorted(model.source("tenant", name) for name in {d.name for d in model.deployments if d.dedicated}),
    ]


def tenant_file(tenant: str) -> str:
    """The org root's file of one tenant's accounts (merge-friendly: one file per tenant)."""
    return f"{DIR}/tenant-{tenant}.tf"


def _files(model: Model, templates: Templates, org: orgmodel.Organization, policies: list[Policy]) -> Iterator[RenderedFile]:
    context = _context(model, org, policies)
    sources = _sources(model)
    names = [(f, f"terraform/{f}.j2") for f in COMMON] + [(f, f"terraform/org/{f}.j2") for f in OWN]
    for filename, template in names:
        yield RenderedFile(
            path=f"{DIR}/{filename}",
            text=format_hcl(templates.render(template, **context)),
            sources=(
                *sources,
                templates.path(template),
                *((templates.path(ACCOUNT_MACRO),) if filename == "main.tf" else ()),
            ),
        )
    recorder = config_recorder.org_text(model, templates)
    if recorder is not None:
        yield RenderedFile(
            path=f"{DIR}/{config_recorder.FILENAME}", text=recorder, sources=(*sources, templates.path(config_recorder.TEMPLATE))
        )
    by_tenant: dict[str, list[orgmodel.Account]] = {}
    for account in org.accounts:
        if account.tenant:
            by_tenant.setdefault(account.role, []).append(account)
    for tenant, accounts in sorted(by_tenant.items()):
        live = [a for a in accounts if not a.retired]
        if live and not model.renders(tenant):  # an incremental render reuses the others' files
            continue
        text = templates.render(TENANT_TEMPLATE, **context, tenant=tenant, accounts=accounts, output=vended.output(tenant))
        yield RenderedFile(
            path=tenant_file(tenant),
            text=format_hcl(text),
            sources=(
                model.source("platform", "platform"),
                *(model.source("environment", a.env) for a in live),
                *((model.source("tenant", tenant),) if live else ()),
                *audit.budget_sources(model, tenant),
                *((model.source("retired_accounts", "retired_accounts"),) if len(live) < len(accounts) else ()),
                templates.path(TENANT_TEMPLATE),
                templates.path(ACCOUNT_MACRO),
                *((templates.path(BUDGET_MACRO),) if live else ()),
            ),
            tenant=tenant if live else None,  # a removed tenant's accounts: an org-wide file
        )
    roles = identity_center.by_role(org)
    for tenant in sorted({d.name for d in model.deployments}):
        if not model.renders(tenant):  # an incremental render reuses the others' files
            continue
        text = templates.render(identity_center.TENANT_TEMPLATE, **context, identity=identity_center.tenant_context(model, roles, tenant))
        yield RenderedFile(
            path=f"{DIR}/{identity_center.tenant_filename(tenant)}",
            text=format_hcl(text),
            sources=(*identity_center.tenant_sources(model, tenant), templates.path(identity_center.TENANT_TEMPLATE)),
            tenant=tenant,
        )
