"""The pool bucket's policy (targets/terraform/data_isolation.py): every pool root attaches it,
it keeps a tagged principal in ``tenants/<its tenant tag>/`` and makes writes name a non-pool
key, and every pooled tenant root tags what it creates with the tenant whose prefix that is
(the attribute the policy relies on). docs/isolation.md, "Data"."""

from __future__ import annotations

import json
from typing import Any

import hcl2

from generator import pipeline
from generator.model import naming
from generator.ops.parse_memo import unquote
from generator.targets.terraform import data_isolation
from generator.vendor import VENDOR_DIR


def _parse(text: str) -> dict[str, Any]:
    return hcl2.loads(text)


def bucket_findings(text: str) -> list[str]:
    """What a pool main.tf lacks of the tenant-prefix policy."""
    doc = unquote(_parse(text))
    found = []
    bucket = next((b for m in doc.get("module", []) for n, b in m.items() if n == "bucket"), None)
    if bucket is None:
        return ["no bucket module"]
    if bucket.get("attach_policy") is not True or bucket.get("policy") != "${data.aws_iam_policy_document.bucket.json}":
        found.append("policy not attached")
    docs = [
        b
        for d in doc.get("data", [])
        for t, named in d.items()
        if t == "aws_iam_policy_document"
        for n, b in named.items()
        if n == "bucket"
    ]
    if not docs:
        return [*found, "no policy document"]
    statements = {s["sid"]: s for s in docs[0]["statement"]}
    name = bucket["bucket"]
    own = statements.get("TenantPrincipalOnlyOwnPrefix", {})
    # $${ in HCL is a literal ${: the IAM policy variable, not a Terraform interpolation
    if own.get("not_resources") != [f"arn:aws:s3:::{name}/tenants/$${{aws:PrincipalTag/tenant}}/*"] or own.get("effect") != "Deny":
        found.append(f"own-prefix statement {own}")
    untagged = statements.get("TenantDataNeedsTenantPrincipal", {})
    if untagged.get("resources") != [f"arn:aws:s3:::{name}/tenants/*"]:
        found.append("untagged principals not kept out")
    pool_key = statements.get("TenantWritesNotPoolKey", {})
    if pool_key.get("condition", [{}])[0].get("values") != ["${module.kms.key_arn}"]:
        found.append("pool key not refused")
    if any(s.get("effect") != "Deny" for s in statements.values()):
        found.append("an Allow statement")
    return found


def test_every_pool_bucket_keeps_tenants_in_their_prefix(sample: pipeline.Build) -> None:
    pools = {p: b.decode() for p, b in sample.result.files.items() if "/pool-" in p and p.endswith("/main.tf")}
    assert pools
    assert {p: bucket_findings(t) for p, t in pools.items() if bucket_findings(t)} == {}


def test_planted_faults_are_caught(sample: pipeline.Build) -> None:
    text = next(b.decode() for p, b in sample.result.files.items() if "/pool-" in p and p.endswith("/main.tf"))
    assert bucket_findings(text.replace("  attach_policy", "  # attach_policy")) == ["policy not attached"]
    assert bucket_findings(text.replace("tenants/$${aws:PrincipalTag/tenant}/*", "tenants/*")) != []
    assert bucket_findings(text.replace('effect    = "Deny"', 'effect    = "Allow"', 1)) != []


def test_pooled_tenant_roots_tag_their_principals_with_their_prefix(sample: pipeline.Build) -> None:
    """The policy's ``tenants/${aws:PrincipalTag/tenant}/`` is the tenant's prefix only if the
    tenant root's default tag ``tenant`` is its name and its roles use naming.tenant_s3_prefix."""
    pooled = [d for d in sample.model.deployments if not d.dedicated]
    assert pooled
    for d in pooled:
        root = naming.terraform_root_dir(d.env, naming.tenant_root(d.name))
        providers = unquote(_parse(sample.result.files[f"{root}/providers.tf"].decode()))
        for block in providers["provider"]:
            default_tags = block["aws"]["default_tags"]
            tags = (default_tags[0] if isinstance(default_tags, list) else default_tags)["tags"]
            assert tags[data_isolation.TENANT_TAG] == d.name
        prefix = data_isolation.OWN_PREFIX.replace("${aws:PrincipalTag/tenant}", d.name)
        assert prefix == naming.tenant_s3_prefix(d.name)
        assert f"/{prefix}*" in sample.result.files[f"{root}/main.tf"].decode()


def test_policy_inputs_exist_and_fit_the_size_limit() -> None:
    inputs = json.loads((VENDOR_DIR / "terraform" / "terraform-aws-modules-inputs.json").read_text())
    s3 = inputs["terraform-aws-modules/s3-bucket/aws"]["inputs"]
    assert {"attach_policy", "policy"} <= set(s3)
    # constant in the number of tenants; a long bucket name still far below S3's 20 KB
    statements = data_isolation.bucket_statements("b" * 63)
    assert len(json.dumps(statements, separators=(",", ":"))) < 4000
