"""IAM Identity Center for tenant teams, in the organization root (``identity.tf``).

One permission set per tenant, assigned to the tenant's group (``naming.tenant_group``, the
same group Argo CD and the namespace RBAC name) on the accounts holding its resources:
dedicated tenants get read-only access to their own accounts; pooled tenants share their
tier's pool account, so their permission set allows only actions conditioned on the
resource's ``tenant`` tag (every tenant root tags what it creates) or scoped to the tenant's
own names (log group, secrets prefix). docs/isolation.md ("Identity"). ``identity.tf`` holds
only the shared lookups; each tenant's resources are in its own ``identity-<tenant>.tf``
(onboarding adds a file, edits none: no merge conflict, no fleet-wide re-render).
"""

from __future__ import annotations

import json
from typing import Any

from generator.model import naming
from generator.model import organization as orgmodel
from generator.model.resolve import Model
from generator.targets.terraform import access_entries

FILENAME = "identity.tf"
#: Console sessions of a tenant team (ISO 8601 duration).
SESSION = "PT4H"
#: AWS-managed policy of a dedicated tenant's permission set: its accounts are its own.
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"


def pooled_policy(model: Model, tenant: str, envs: list[str]) -> str:
    """Read access in a pool account limited to the tenant's own resources (minified JSON)."""
    org = model.platform.organization
    statements: list[dict[str, Any]] = [
        {
            "Sid": "OwnTaggedResources",
            "Effect": "Allow",
            "Action": ["sqs:GetQueueAttributes", "sqs:ListQueueTags", "kms:DescribeKey", "secretsmanager:DescribeSecret"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceTag/tenant": tenant}},
        },
        {
            "Sid": "OwnLogs",
            "Effect": "Allow",
            "Action": ["logs:GetLogEvents", "logs:FilterLogEvents", "logs:DescribeLogStreams"],
            "Resource": [f"arn:aws:logs:*:*:log-group:{naming.log_group(model.platform, env, tenant)}:*" for env in envs],
        },
        {
            "Sid": "NoOtherTenantsSecrets",
            "Effect": "Deny",
            "Action": "secretsmanager:GetSecretValue",
            "NotResource": [f"arn:aws:secretsmanager:*:*:secret:{org}/{env}/{tenant}/*" for env in envs],
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"), sort_keys=True)


def tenant_filename(tenant: str) -> str:
    """The org root's file of one tenant team's permission sets and assignments."""
    return f"identity-{tenant}.tf"


#: The template of :func:`tenant_filename`.
TENANT_TEMPLATE = "terraform/org/identity-tenant.tf.j2"


def by_role(org: orgmodel.Organization) -> dict[tuple[str, str], str]:
    """(account role, environment) -> the account's Terraform address in the org root."""
    return {(a.role, a.env): a.address for a in org.accounts}


def tenant_context(model: Model, roles: dict[tuple[str, str], str], tenant: str) -> dict[str, Any]:
    """The tenant's permission set, group and the org accounts (Terraform addresses) to assign.
    Reads only the tenant's own deployments (indexed), so the fleet costs linear time."""
    deployments = model.of_tenant(tenant)
    dedicated = deployments[0].dedicated
    wanted_roles = [(tenant if dedicated else naming.pool_root(d.tier.name), d.env) for d in deployments]
    return {
        "tenant": tenant,
        "key": tenant.replace("-", "_"),
        "name": f"tenant-{tenant}",
        "group": naming.tenant_group(model.platform, tenant),
        "dedicated": dedicated,
        "accounts": sorted({roles[r] for r in wanted_roles if r in roles}),
        "policy": None if dedicated else pooled_policy(model, tenant, sorted({d.env for d in deployments})),
        # cluster access: a narrow set in the shared-services accounts (access_entries.py)
        "eks": access_entries.org_context(model, roles, tenant),
    }


def tenant_sources(model: Model, tenant: str) -> list[str]:
    """What one tenant's identity file is made from: its file, the platform (organization
    name, group naming) and the environments it runs in (accounts, regions, clusters)."""
    envs = sorted({d.env for d in model.of_tenant(tenant)})
    return [model.source("platform", "platform"), *(model.source("environment", e) for e in envs), model.source("tenant", tenant)]
