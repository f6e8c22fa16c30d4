"""The rendered Rego plan policies (rendered/policy/terraform), run by regopy (a real Rego
interpreter) as conftest runs them: quiet on plan JSON shaped like the sample's roots, and
each rule fires, with its message, on one planted violation."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from regopy import Interpreter

from generator import pipeline
from generator.model.resolve import Deployment
from generator.targets import policy_as_code

EDGE = "us-east-1"


@pytest.fixture(scope="module")
def modules(sample: pipeline.Build) -> dict[str, str]:
    files = {p: d.decode() for p, d in sample.result.files.items() if p.startswith(f"{policy_as_code.DIR}/")}
    assert set(files) == {f"{policy_as_code.DIR}/{name}.rego" for name in policy_as_code.FILES}
    return files


def deny(modules: dict[str, str], plan: dict[str, Any]) -> list[str]:
    rego = Interpreter()
    for path, text in modules.items():
        rego.add_module(path, text)
    rego.set_input(plan)
    result = json.loads(str(rego.query("x := data.main.deny")))
    return sorted(result["bindings"]["x"])


def change(address: str, rtype: str, after: dict[str, Any], *, module: str = "", actions: tuple[str, ...] = ("create",)) -> dict[str, Any]:
    rc: dict[str, Any] = {
        "address": address,
        "type": rtype,
        "change": {"actions": list(actions), "before": None, "after": after, "after_unknown": {}},
    }
    if module:
        rc["module_address"] = module
    return rc


def tags(env: str, tenant: str, owner: str, cost_center: str) -> dict[str, str]:
    return {"environment": env, "tenant": tenant, "owner": owner, "cost-center": cost_center, "managed-by": "companyos"}


def tenant_plan(d: Deployment) -> dict[str, Any]:
    """What a dedicated tenant root plans, as ``terraform show -json`` writes it (the attributes
    the rules read): database, cache, bucket with KMS encryption, key, an IRSA policy, edge cert."""
    region = d.environment.aws.region
    t = tags(d.env, d.name, d.tenant.owner, d.tenant.cost_center)
    db = d.settings.database
    return {
        "format_version": "1.2",
        "resource_changes": [
            change(
                "module.rds.module.db_instance.aws_db_instance.this[0]",
                "aws_db_instance",
                {"region": region, "storage_encrypted": True, "deletion_protection": db.deletion_protection, "tags_all": t},
                module="module.rds.module.db_instance",
            ),
            change(
                "module.cache.aws_elasticache_replication_group.this[0]",
                "aws_elasticache_replication_group",
                {"region": region, "at_rest_encryption_enabled": "true", "tags_all": t},
                module="module.cache",
            ),
            change(
                "module.bucket.aws_s3_bucket.this[0]",
                "aws_s3_bucket",
                {"region": region, "force_destroy": False, "tags_all": t},
                module="module.bucket",
            ),
            change(
                "module.bucket.aws_s3_bucket_server_side_encryption_configuration.this[0]",
                "aws_s3_bucket_server_side_encryption_configuration",
                {"region": region, "rule": [{"apply_server_side_encryption_by_default": [{"sse_algorithm": "aws:kms"}]}]},
                module="module.bucket",
            ),
            change(
                "module.kms.aws_kms_key.this[0]",
                "aws_kms_key",
                {"region": region, "enable_key_rotation": True, "tags_all": t},
                module="module.kms",
            ),
            change(
                "module.irsa_api.aws_iam_policy.policy[0]",
                "aws_iam_policy",
                {
                    "policy": json.dumps(
                        {
                            "Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Action": ["sqs:SendMessage", "s3:GetObject"], "Resource": "*"}],
                        }
                    ),
                    "tags_all": t,
                },
                module="module.irsa_api",
            ),
            change("aws_acm_certificate.edge", "aws_acm_certificate", {"region": EDGE, "tags_all": t}),
            change("aws_iam_role_policy_attachment.x", "aws_iam_role_policy_attachment", {"role": "r", "policy_arn": "arn"}),
        ],
    }


def addon_plan(sample: pipeline.Build) -> dict[str, Any]:
    """The shared root's add-on policies, from the catalog's own add-on statements."""
    platform = sample.model.platform
    t = tags("prod", "shared", platform.owner, platform.cost_center)
    out = []
    for name, entry in sorted(sample.model.catalog.of("addon").items()):
        statements = [{"Effect": "Allow", "Action": s.actions, "Resource": s.resources} for s in entry.spec.iam_policy]
        if statements:
            doc = json.dumps({"Version": "2012-10-17", "Statement": statements})
            out.append(change(f"module.addon_{name}.aws_iam_policy.policy[0]", "aws_iam_policy", {"policy": doc, "tags_all": t}))
    assert out
    return {"resource_changes": out}


@pytest.fixture(scope="module")
def plans(sample: pipeline.Build) -> list[dict[str, Any]]:
    out = [tenant_plan(d) for d in sample.model.deployments if d.dedicated]
    assert out
    return [*out, addon_plan(sample)]


def regulated_prod(sample: pipeline.Build) -> Deployment:
    return next(d for d in sample.model.deployments if d.tier.regulated and d.env == "prod" and d.settings.database.deletion_protection)


def test_quiet_on_plans_shaped_like_the_sample(modules, plans):
    for plan in plans:
        assert deny(modules, plan) == []


def test_guardrail_data_comes_from_the_catalog(sample, modules):
    text = modules[f"{policy_as_code.DIR}/guardrails.rego"]
    assert text.splitlines()[0].startswith("# Generated by companyos")
    assert "package main" in text
    d = regulated_prod(sample)
    assert f'"{d.env}/{d.name}"' in text
    for env in sample.model.environments:
        assert json.dumps(env.name) in text


def _mutate(plan: dict[str, Any], rtype: str, **after: Any) -> dict[str, Any]:
    plan = copy.deepcopy(plan)
    rc = next(rc for rc in plan["resource_changes"] if rc["type"] == rtype)
    rc["change"]["after"].update(after)
    return plan


def _plant(sample: pipeline.Build) -> dict[str, Any]:
    return tenant_plan(regulated_prod(sample))


@pytest.mark.parametrize(
    ("plant", "message"),
    [
        (
            lambda p: _mutate(p, "aws_kms_key", tags_all={"environment": "prod", "tenant": "acme", "owner": "o"}),
            "required tag 'cost-center' is missing",
        ),
        (lambda p: _mutate(p, "aws_kms_key", region="us-west-2"), "region 'us-west-2' is not allowed here"),
        (lambda p: _mutate(p, "aws_kms_key", region=EDGE), f"region '{EDGE}' is not allowed here"),
        (lambda p: _mutate(p, "aws_db_instance", storage_encrypted=False), "storage_encrypted must be true"),
        (
            lambda p: _mutate(p, "aws_elasticache_replication_group", at_rest_encryption_enabled=False),
            "at_rest_encryption_enabled must be true",
        ),
        (lambda p: _mutate(p, "aws_kms_key", enable_key_rotation=False), "enable_key_rotation must be true"),
        (
            lambda p: _mutate(
                p,
                "aws_s3_bucket_server_side_encryption_configuration",
                rule=[{"apply_server_side_encryption_by_default": [{"sse_algorithm": "AES256"}]}],
            ),
            "sse_algorithm 'AES256' must be aws:kms",
        ),
        (
            lambda p: {
                "resource_changes": [
                    rc for rc in p["resource_changes"] if rc["type"] != "aws_s3_bucket_server_side_encryption_configuration"
                ]
            },
            "no aws_s3_bucket_server_side_encryption_configuration for this bucket",
        ),
        (lambda p: _mutate(p, "aws_db_instance", deletion_protection=False), "deletion_protection must be true for regulated data"),
        (lambda p: _mutate(p, "aws_s3_bucket", force_destroy=True), "force_destroy must be false for regulated data"),
        (
            lambda p: _mutate(
                p, "aws_iam_policy", policy=json.dumps({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}})
            ),
            "IAM policy allows the wildcard action 's3:*'",
        ),
        (
            lambda p: _mutate(
                p, "aws_iam_policy", policy=json.dumps({"Statement": [{"Effect": "Allow", "Action": ["*"], "Resource": "*"}]})
            ),
            "IAM policy allows the wildcard action '*'",
        ),
    ],
    ids=[
        "tags",
        "region",
        "edge-region-regional-type",
        "rds-encryption",
        "cache-encryption",
        "kms-rotation",
        "s3-sse-algorithm",
        "s3-no-sse",
        "deletion-protection",
        "force-destroy",
        "iam-service-wildcard",
        "iam-star",
    ],
)
def test_each_rule_fires_on_a_planted_violation(sample, modules, plant, message):
    found = deny(modules, plant(_plant(sample)))
    assert len(found) == 1 and message in found[0], found


def test_deleting_a_regulated_data_store_is_denied(sample, modules):
    d = regulated_prod(sample)
    plan = _plant(sample)
    db = next(rc for rc in plan["resource_changes"] if rc["type"] == "aws_db_instance")
    db["change"].update(actions=["delete"], before=db["change"]["after"], after=None)
    found = deny(modules, plan)
    assert found == [f"{db['address']}: the plan deletes a regulated data store ({d.env}/{d.name})"]


def test_unknown_values_are_not_judged_at_plan_time(sample, modules):
    plan = _mutate(_plant(sample), "aws_db_instance", storage_encrypted=None)
    db = next(rc for rc in plan["resource_changes"] if rc["type"] == "aws_db_instance")
    del db["change"]["after"]["storage_encrypted"]
    db["change"]["after_unknown"]["storage_encrypted"] = True
    assert deny(modules, plan) == []


def test_a_standard_tenant_may_drop_deletion_protection(sample, modules):
    d = next(d for d in sample.model.deployments if not d.tier.regulated and d.env == "dev")
    plan = tenant_plan(d)
    plan = _mutate(plan, "aws_db_instance", deletion_protection=False)
    assert deny(modules, plan) == []
