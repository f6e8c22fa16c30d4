"""Long-term log archive (issue 16 item 5): where ``settings.logs.archive`` is set (prod), each
root that creates a log group gets ``log_archive.tf``: a subscription filter on that group,
a Firehose stream, an S3 bucket (KMS, public access blocked, TLS-only, Glacier then expiry from
the catalog) and two least-privilege roles. Parsed with python-hcl2, argument names checked
against the vendored AWS provider data; a filter on a group the root does not create is caught."""

from __future__ import annotations

import json
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

from generator import pipeline, vendor
from generator.catalog import spec
from generator.targets.terraform import log_archive
from generator.targets.terraform import target as terraform
from helpers.catalog_edit import override
from helpers.repo import REPO

OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)
PROVIDER = json.loads((vendor.VENDOR_DIR / "terraform" / "aws-provider-resources.json").read_text())
META = {"provider", "depends_on", "count", "for_each", "lifecycle", "__is_block__"}


def _doc(build: pipeline.Build, path: str) -> dict[str, Any]:
    return hcl2.loads(build.result.files[path].decode(), serialization_options=OPTIONS)


def _blocks(doc: dict[str, Any], kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(t, name): body for item in doc.get(kind, []) for t, named in item.items() for name, body in named.items()}


def _modules(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: body for item in doc.get("module", []) for name, body in item.items()}


def _unknown(body: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    """Arguments and nested blocks of ``body`` the provider schema does not have, recursively."""
    bad = [f"{where}.{k}" for k in body if k not in META and k not in schema["arguments"] and k not in schema.get("blocks", [])]
    for name, inner in schema.get("nested", {}).items():
        for item in body.get(name, []):
            bad += _unknown(item, inner, f"{where}.{name}")
    return bad


def _archived(build: pipeline.Build) -> list[terraform.Root]:
    return [r for r in terraform.roots(build.model) if log_archive.applies(r)]


def _statements(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return list(_blocks(doc, "data")[("aws_iam_policy_document", name)]["statement"])


def test_prod_roots_with_a_log_group_and_only_they_have_an_archive(sample):
    roots = terraform.roots(sample.model)
    archived = {r.dir for r in _archived(sample)}
    for r in roots:
        path = f"{r.dir}/{log_archive.FILENAME}"
        main = _blocks(_doc(sample, f"{r.dir}/main.tf"), "resource")
        has_group = any(t == "aws_cloudwatch_log_group" and n in log_archive.GROUPS.values() for t, n in main)
        want = r.env.name == "prod" and has_group
        assert (path in sample.result.files) is want, r.dir
        assert (r.dir in archived) is want
    assert {r.kind for r in _archived(sample)} == {"shared", "dedicated", "pooled"}


def test_every_argument_is_a_real_provider_argument(sample):
    for r in _archived(sample):
        doc = _doc(sample, f"{r.dir}/{log_archive.FILENAME}")
        for (kind, name), body in _blocks(doc, "resource").items():
            assert not _unknown(body, PROVIDER["resources"][kind], f"{kind}.{name}")
        for (kind, name), body in _blocks(doc, "data").items():
            assert not _unknown(body, PROVIDER["data_sources"][kind], f"data.{kind}.{name}")


def test_module_calls_pass_only_real_inputs(sample):
    upstream = json.loads((vendor.VENDOR_DIR / "terraform" / "terraform-aws-modules-inputs.json").read_text())
    for r in _archived(sample):
        for name, body in _modules(_doc(sample, f"{r.dir}/{log_archive.FILENAME}")).items():
            inputs = set(upstream[body["source"]]["inputs"])
            assert set(body) - {"source", "version", "__is_block__"} <= inputs, (name, set(body) - inputs)


def _filter_mismatches(build: pipeline.Build) -> list[str]:
    """Subscription filters naming a log group their root's main.tf does not create."""
    bad = []
    for r in _archived(build):
        groups = {n for t, n in _blocks(_doc(build, f"{r.dir}/main.tf"), "resource") if t == "aws_cloudwatch_log_group"}
        doc = _doc(build, f"{r.dir}/{log_archive.FILENAME}")
        [sub] = [b for (t, _), b in _blocks(doc, "resource").items() if t == "aws_cloudwatch_log_subscription_filter"]
        ref = sub["log_group_name"].removeprefix("${aws_cloudwatch_log_group.").removesuffix(".name}")
        if ref not in groups:
            bad.append(f"{r.dir}: {ref}")
    return bad


def test_the_filter_sends_the_roots_own_log_group_to_the_stream(sample):
    assert not _filter_mismatches(sample)
    for r in _archived(sample):
        res = _blocks(_doc(sample, f"{r.dir}/{log_archive.FILENAME}"), "resource")
        sub = res[("aws_cloudwatch_log_subscription_filter", "log_archive")]
        assert sub["filter_pattern"] == ""  # every event
        assert sub["destination_arn"] == "${aws_kinesis_firehose_delivery_stream.log_archive.arn}"
        assert sub["role_arn"] == "${aws_iam_role.log_archive_logs.arn}"
        stream = res[("aws_kinesis_firehose_delivery_stream", "log_archive")]
        assert stream["destination"] == "extended_s3"
        [sse] = stream["server_side_encryption"]
        assert sse["enabled"] is True and sse["key_type"] == "CUSTOMER_MANAGED_CMK"
        [s3] = stream["extended_s3_configuration"]
        assert s3["bucket_arn"] == "${module.log_archive_bucket.s3_bucket_arn}"
        assert s3["kms_key_arn"] == "${module.log_archive_kms.key_arn}"
        assert s3["role_arn"] == "${aws_iam_role.log_archive_firehose.arn}"


def test_a_filter_on_a_group_the_root_does_not_create_is_caught(monkeypatch):
    # Plant the fault: tenant roots subscribe the shared root's group name.
    monkeypatch.setattr(log_archive, "GROUPS", {**log_archive.GROUPS, "dedicated": "platform"})
    bad = _filter_mismatches(pipeline.build(REPO))
    assert bad and all("/tenant-" in b for b in bad)


def test_bucket_is_private_tls_only_kms_and_moves_to_glacier_then_expires(sample):
    for r in _archived(sample):
        archive = r.settings.logs.archive
        assert archive is not None
        modules = _modules(_doc(sample, f"{r.dir}/{log_archive.FILENAME}"))
        bucket = modules["log_archive_bucket"]
        assert bucket["source"] == "terraform-aws-modules/s3-bucket/aws"
        assert len(bucket["bucket"]) <= 63 and bucket["bucket"].endswith(r.account)
        for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
            assert bucket[flag] is True
        assert bucket["attach_deny_insecure_transport_policy"] is True
        sse = bucket["server_side_encryption_configuration"]["rule"]["apply_server_side_encryption_by_default"]
        assert sse == {"sse_algorithm": "aws:kms", "kms_master_key_id": "${module.log_archive_kms.key_arn}"}
        [rule] = bucket["lifecycle_rule"]
        assert rule["transition"] == [{"days": archive.glacier_after_days, "storage_class": "GLACIER"}]
        assert rule["expiration"] == {"days": archive.expire_after_days}
        assert modules["log_archive_kms"]["enable_key_rotation"] is True


def test_roles_are_least_privilege(sample):
    for r in _archived(sample):
        doc = _doc(sample, f"{r.dir}/{log_archive.FILENAME}")
        [trust] = _statements(doc, "log_archive_firehose_trust")
        assert trust["principals"][0]["identifiers"] == ["firehose.amazonaws.com"]
        assert trust["condition"][0]["variable"] == "sts:ExternalId" and trust["condition"][0]["values"] == [r.account]
        firehose = _statements(doc, "log_archive_firehose")
        actions = {a for s in firehose for a in s["actions"]}
        assert actions == {
            "s3:GetBucketLocation",
            "s3:ListBucketMultipartUploads",
            "s3:PutObject",
            "s3:AbortMultipartUpload",
            "kms:GenerateDataKey",
            "kms:Decrypt",
        }
        resources = {res for s in firehose for res in s["resources"]}
        assert resources == {
            "${module.log_archive_bucket.s3_bucket_arn}",
            "${module.log_archive_bucket.s3_bucket_arn}/*",
            "${module.log_archive_kms.key_arn}",
        }
        [key] = [s for s in firehose if s["sid"] == "ArchiveKeyThroughS3"]
        assert {"variable": "kms:ViaService", "values": [f"s3.{r.env.aws.region}.amazonaws.com"]}.items() <= key["condition"][0].items()
        [logs_trust] = _statements(doc, "log_archive_logs_trust")
        assert logs_trust["principals"][0]["identifiers"] == ["logs.amazonaws.com"]
        assert logs_trust["condition"][0]["values"] == [f"arn:aws:logs:{r.env.aws.region}:{r.account}:*"]
        [put] = _statements(doc, "log_archive_logs")
        assert put["actions"] == ["firehose:PutRecord", "firehose:PutRecordBatch"]
        assert put["resources"] == ["${aws_kinesis_firehose_delivery_stream.log_archive.arn}"]
        assert not any(a == "*" or a.endswith(":*") for s in [*firehose, put] for a in s["actions"])


def test_lifecycle_comes_from_the_catalog(repo):
    override(repo, "acme", "prod", {"logs": {"archive": {"glacier_after_days": 60, "expire_after_days": 400}}})
    build = pipeline.build(repo)
    rule = _modules(_doc(build, f"rendered/terraform/prod/tenant-acme/{log_archive.FILENAME}"))["log_archive_bucket"]["lifecycle_rule"][0]
    assert rule["transition"][0]["days"] == 60 and rule["expiration"]["days"] == 400
    other = _modules(_doc(build, f"rendered/terraform/prod/tenant-umbrella/{log_archive.FILENAME}"))["log_archive_bucket"][
        "lifecycle_rule"
    ][0]
    assert other["transition"][0]["days"] == 30  # prod's own setting, untouched


def test_expiry_before_the_glacier_move_is_a_located_error(repo, companyos):
    path = override(repo, "acme", "prod", {"logs": {"archive": {"glacier_after_days": 90, "expire_after_days": 60}}})
    before = path.read_bytes()
    result = companyos("check", cwd=repo)
    assert result.code == 2
    assert "tenants/acme.yaml:" in result.err and "expire_after_days" in result.err
    assert "Traceback" not in result.err
    assert path.read_bytes() == before


def test_archive_settings_validate_the_order():
    assert spec.LogArchiveSettings(glacier_after_days=30, expire_after_days=31).expire_after_days == 31
    with pytest.raises(ValueError):
        spec.LogArchiveSettings(glacier_after_days=30, expire_after_days=30)
