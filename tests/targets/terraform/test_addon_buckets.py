"""Loki and Tempo store on S3 (issue 16): each add-on bucket is a private, TLS-only, KMS-encrypted
bucket of the shared root with the catalog's lifecycle; the add-on's IRSA role may list and
use exactly its own buckets (and the bucket key only through S3); the Helm values name the
same buckets Terraform creates; prod runs Loki with more than one replica. Bad bucket input
is a ``path:line:col`` error with exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

from generator import pipeline
from generator.model import addons as model_addons
from generator.targets import addons as addons_target
from generator.targets.terraform import addon_roles
from helpers.catalog_edit import edit_yaml
from helpers.yaml_docs import load_yaml_docs

OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)


def _modules(build: pipeline.Build, env: str) -> dict[str, dict[str, Any]]:
    doc = hcl2.loads(build.result.files[f"rendered/terraform/{env}/shared/{addon_roles.FILENAME}"].decode(), serialization_options=OPTIONS)
    return {name: body for block in doc.get("module", []) for name, body in block.items()}


def _values(build: pipeline.Build, env: str, addon: str) -> dict[str, Any]:
    docs = load_yaml_docs(build.result.files[addons_target.addons_path(env)])
    [app] = [d for d in docs if d["kind"] == "Application" and d["metadata"]["labels"].get("companyos.io/addon") == addon]
    values: dict[str, Any] = app["spec"]["source"]["helm"]["valuesObject"]
    return values


def _buckets(modules: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {body["bucket"]: body for body in modules.values() if body["source"] == "terraform-aws-modules/s3-bucket/aws"}


def test_every_addon_bucket_is_private_encrypted_and_expires(sample):
    for env in sample.model.environments:
        modules = _modules(sample, env.name)
        buckets = _buckets(modules)
        declared = {
            model_addons.bucket_name(sample.model.platform, env, a.name, b.name): b
            for a in model_addons.in_environment(sample.model.catalog, env.name)
            for b in a.buckets
        }
        assert declared and set(buckets) == set(declared), env.name
        for name, body in buckets.items():
            for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
                assert body[flag] is True, (name, flag)
            assert body["attach_deny_insecure_transport_policy"] is True
            sse = body["server_side_encryption_configuration"]["rule"]["apply_server_side_encryption_by_default"]
            assert sse == {"sse_algorithm": "aws:kms", "kms_master_key_id": "${module.kms_addon_buckets.key_arn}"}
            [rule] = body["lifecycle_rule"]
            assert rule["expiration"]["days"] == declared[name].expire_after_days
            assert "transition" not in rule  # Loki and Tempo read their buckets: never Glacier
        assert modules["kms_addon_buckets"]["enable_key_rotation"] is True


def test_each_role_uses_exactly_its_own_buckets(sample):
    for env in sample.model.environments:
        modules = _modules(sample, env.name)
        for addon in model_addons.in_environment(sample.model.catalog, env.name):
            if not addon.buckets:
                continue
            mine = sorted(f"arn:aws:s3:::{model_addons.bucket_name(sample.model.platform, env, addon.name, b.name)}" for b in addon.buckets)
            policy = modules[f"irsa_addon_{addon.name.replace('-', '_')}"]["inline_policy_permissions"]
            assert sorted(policy["listBuckets"]["resources"]) == mine
            assert policy["listBuckets"]["actions"] == ["s3:ListBucket"]
            assert sorted(policy["objects"]["resources"]) == [f"{a}/*" for a in mine]
            assert set(policy["objects"]["actions"]) == {
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:GetObjectTagging",
                "s3:PutObjectTagging",
            }
            key = policy["bucketKey"]
            assert key["resources"] == ["${module.kms_addon_buckets.key_arn}"]
            assert key["condition"][0]["variable"] == "kms:ViaService"
            assert key["condition"][0]["values"] == [f"s3.{env.aws.region}.amazonaws.com"]
            for statement in policy.values():
                assert not {"*", "s3:*", "kms:*"} & set(statement["actions"])
                assert "*" not in statement["resources"]


def test_helm_values_name_the_buckets_terraform_creates(sample):
    for env in sample.model.environments:
        buckets = set(_buckets(_modules(sample, env.name)))
        loki = _values(sample, env.name, "loki")["loki"]["storage"]
        assert loki["type"] == "s3"
        assert set(loki["bucketNames"].values()) <= buckets
        assert loki["s3"]["region"] == env.aws.region
        tempo = _values(sample, env.name, "tempo")["tempo"]["storage"]["trace"]
        assert tempo["backend"] == "s3" and tempo["s3"]["bucket"] in buckets
        for addon in ("loki", "tempo"):
            sa = _values(sample, env.name, addon)["serviceAccount"]
            assert sa["annotations"]["eks.amazonaws.com/role-arn"].endswith(f"-{env.name}-addon-{addon}")


def test_loki_runs_replicated_in_prod_only(sample):
    for env in sample.model.environments:
        loki = _values(sample, env.name, "loki")
        replicas = loki["singleBinary"]["replicas"]
        assert (replicas > 1) is (env.name == "prod"), env.name
        assert loki["loki"]["commonConfig"]["replication_factor"] == replicas
        assert loki["loki"]["schemaConfig"]["configs"][0]["object_store"] == "s3"


def test_a_glacier_bucket_moves_before_it_expires(repo):
    def archive(data: Any) -> None:
        data["buckets"].append({"name": "archive", "glacier_after_days": 30, "expire_after_days": 400})

    edit_yaml(repo / "catalog/addons/loki.yaml", archive)
    build = pipeline.build(repo)
    env = next(e for e in build.model.environments if e.name == "prod")
    body = _buckets(_modules(build, "prod"))[model_addons.bucket_name(build.model.platform, env, "loki", "archive")]
    [rule] = body["lifecycle_rule"]
    assert rule["transition"] == [{"days": 30, "storage_class": "GLACIER"}]
    assert rule["expiration"] == {"days": 400}


def _errors(companyos: Any, repo: Path) -> list[str]:
    result = companyos("check", cwd=repo)
    assert result.code == 2, result.err
    return [line for line in result.err.splitlines() if line.startswith("catalog/addons/")]


def test_bad_bucket_input_is_reported_at_its_line(repo, companyos):
    def bad(data: Any) -> None:
        data["buckets"].append({"name": "archive", "glacier_after_days": 400, "expire_after_days": 30})
        data["buckets"].append({"name": "chunks", "expire_after_days": 1})
        data["values"]["loki"]["storage"]["bucketNames"]["ruler"] = "{bucket_rules}"
        data["environment_values"]["production"] = {"singleBinary": {"replicas": 2}}

    edit_yaml(repo / "catalog/addons/loki.yaml", bad)
    lines = _errors(companyos, repo)
    text = "\n".join(lines)
    assert "glacier_after_days (400) must be below expire_after_days (30)" in text
    assert "bucket 'chunks' is declared twice" in text
    assert "{bucket_rules} names no bucket of this add-on" in text
    assert "unknown environment 'production'" in text
    assert all(line.split(":")[1].isdigit() and line.split(":")[2].isdigit() for line in lines)


def test_buckets_need_a_service_account(repo, companyos):
    edit_yaml(repo / "catalog/addons/tempo.yaml", lambda data: data.pop("service_account"))
    lines = _errors(companyos, repo)
    assert any("tempo.yaml" in line and "buckets need service_account" in line for line in lines), lines
