"""EKS access entries for tenant teams: the shared root's ``access.tf`` and its org-root half.

The namespace RoleBinding (``targets/argocd/rbac.py``) names the Kubernetes group
``naming.tenant_group``; nothing mapped an AWS identity to it. The org root gives each tenant
team a second, narrow permission set ``tenant-<name>-eks`` (``eks:DescribeCluster`` on the
environment's cluster, for ``aws eks update-kubeconfig``) assigned in the shared-services
account of each environment the tenant runs in; IAM Identity Center creates the role
``AWSReservedSSO_tenant-<name>-eks_<suffix>`` there, and the shared root finds it by name
(``aws_iam_roles``: the suffix is AWS's) and maps it to the group with an access entry
(type STANDARD, no access policy: RBAC alone decides). Per-tenant facts come from the shared
root's ``tenants/<tenant>.json`` records, so onboarding changes no ``.tf`` line.
"""

from __future__ import annotations

import json
from typing import Any

from generator.model import naming
from generator.model.resolve import Model

FILENAME = "access.tf"
#: Where IAM Identity Center puts the roles of permission sets.
SSO_PATH = "/aws-reserved/sso.amazonaws.com/"


def permission_set(tenant: str) -> str:
    """At most 32 characters (Identity Center's limit): tenant names have at most 20."""
    return f"tenant-{tenant}-eks"


def record(model: Model, tenant: str) -> dict[str, str]:
    """The ``team`` entry of the tenant's record in the shared root."""
    return {"group": naming.tenant_group(model.platform, tenant), "permission_set": permission_set(tenant)}


def eks_policy(model: Model, tenant: str) -> str:
    """The permission set's inline policy: describe the clusters of the tenant's environments
    (minified JSON); everything inside the cluster is Kubernetes RBAC."""
    clusters = sorted(
        f"arn:aws:eks:{env.aws.region}:{env.accounts.shared_services}:cluster/{naming.cluster_name(model.platform, env.name)}"
        for env in model.environments
        if env.name in {d.env for d in model.of_tenant(tenant)}
    )
    statement = {"Sid": "DescribeOwnClusters", "Effect": "Allow", "Action": ["eks:DescribeCluster"], "Resource": clusters}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, separators=(",", ":"), sort_keys=True)


def org_context(model: Model, by_role: dict[tuple[str, str], str], tenant: str) -> dict[str, Any]:
    """What the org root's identity.tf needs for the tenant's EKS permission set."""
    envs = sorted({d.env for d in model.of_tenant(tenant)})
    return {
        "name": permission_set(tenant),
        "policy": eks_policy(model, tenant),
        "accounts": sorted({by_role[("shared-services", e)] for e in envs if ("shared-services", e) in by_role}),
    }


#: The shared root's access.tf (constant per environment: the tenants come from the records).
TEMPLATE = "terraform/shared/access.tf.j2"
