"""Pooled data isolation in the pool roots: the pool bucket's policy (docs/isolation.md, "Data").

Pooled tenants share one bucket, a prefix each (``tenants/<tenant>/``). The tenants' IRSA
policies already stop at their prefix; the bucket policy makes that hold for *every*
principal of the pool account, by attribute: each tenant root tags all it creates with
``tenant = <name>`` (provider default tags), so a principal may touch objects only under
``tenants/${aws:PrincipalTag/tenant}/``, an untagged one none of them, and every write there
must name a KMS key other than the pool's (the tenant's own: only its roles may use it).
One constant-size policy for any number of tenants (bucket policies stop at 20 KB).
"""

from __future__ import annotations

from typing import Any

from generator.model import naming

#: The macros that write these statements (a source of every pool main.tf).
MACROS = "terraform/_data_isolation.tf.j2"
#: The principal tag every tenant root's provider sets on what it creates (``_tags`` in target.py).
TENANT_TAG = "tenant"
#: Object-level actions; bucket-level ones (policy, lifecycle) stay with the pool root's role.
OBJECT_ACTIONS = ["s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*", "s3:RestoreObject", "s3:AbortMultipartUpload"]
#: ``tenants/`` of naming.tenant_s3_prefix, for every tenant at once.
TENANTS_PREFIX = naming.tenant_s3_prefix("x").rsplit("x/", 1)[0]
OWN_PREFIX = TENANTS_PREFIX + "${aws:PrincipalTag/" + TENANT_TAG + "}/"


def bucket_statements(bucket: str) -> list[dict[str, Any]]:
    """The Deny statements of the pool bucket's policy; ``pool_key`` conditions are added by
    the macro (the key's ARN exists only in Terraform)."""
    objects = f"arn:aws:s3:::{bucket}/{TENANTS_PREFIX}*"
    tag = f"aws:PrincipalTag/{TENANT_TAG}"
    return [
        {
            "sid": "TenantDataNeedsTenantPrincipal",
            "actions": OBJECT_ACTIONS,
            "resources": [objects],
            "conditions": [{"test": "Null", "variable": tag, "values": ["true"]}],
        },
        {
            "sid": "TenantPrincipalOnlyOwnPrefix",
            "actions": OBJECT_ACTIONS,
            "not_resources": [f"arn:aws:s3:::{bucket}/{OWN_PREFIX}*"],
            "conditions": [{"test": "Null", "variable": tag, "values": ["false"]}],
        },
        {
            "sid": "TenantPrincipalListsOnlyOwnPrefix",
            "actions": ["s3:ListBucket", "s3:ListBucketVersions"],
            "resources": [f"arn:aws:s3:::{bucket}"],
            "conditions": [
                {"test": "Null", "variable": tag, "values": ["false"]},
                {"test": "StringNotLike", "variable": "s3:prefix", "values": [f"{OWN_PREFIX}*"]},
            ],
        },
        {
            "sid": "TenantWritesNameAKey",
            "actions": ["s3:PutObject"],
            "resources": [objects],
            "conditions": [{"test": "Null", "variable": "s3:x-amz-server-side-encryption-aws-kms-key-id", "values": ["true"]}],
        },
    ]


def context(bucket: str) -> dict[str, Any]:
    """What the macro needs for a pool's bucket."""
    return {
        "statements": bucket_statements(bucket),
        "objects": f"arn:aws:s3:::{bucket}/{TENANTS_PREFIX}*",
        "own_prefix": OWN_PREFIX,
    }
