"""The AWS side of the capacity levers (targets/terraform/capacity.py): every capacity.tf parsed
with python-hcl2 and checked against the pinned module inputs and the AWS provider schema
(generator/vendor/tools/validate_tf.py), then what each lever wires to what."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import hcl2
import pytest
from hcl2.utils import SerializationOptions

from generator import vendor
from generator.model import addons as model_addons
from generator.targets.terraform.modules import MODULES

VALIDATE_TF = vendor.terraform_data_dir().parent / "tools" / "validate_tf.py"
OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)


@pytest.fixture(scope="module")
def capacity_tf(sample) -> dict[str, str]:
    return {p: d.decode() for p, d in sample.result.files.items() if p.endswith("/capacity.tf")}


def parsed(text: str) -> dict[str, Any]:
    return hcl2.loads(text, serialization_options=OPTIONS)


def modules(doc: dict[str, Any]) -> dict[str, Any]:
    return {name: body for item in doc.get("module", []) for name, body in item.items()}


def resources(doc: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {(t, n): body for item in doc.get("resource", []) for t, inner in item.items() for n, body in inner.items()}


def test_every_capacity_file_passes_the_module_and_provider_checks(capacity_tf, tmp_path):
    for path, text in capacity_tf.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    assert len(capacity_tf) >= 10
    run = subprocess.run([sys.executable, str(VALIDATE_TF), str(tmp_path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 findings" in run.stderr


def test_the_checker_catches_an_unknown_input(capacity_tf, tmp_path):
    text = capacity_tf["rendered/terraform/prod/shared/capacity.tf"].replace("enable_spot_termination", "enable_spot_interruptions")
    (tmp_path / "capacity.tf").write_text(text)
    run = subprocess.run([sys.executable, str(VALIDATE_TF), "-q", str(tmp_path)], capture_output=True, text=True, check=False)
    assert run.returncode == 1 and "enable_spot_interruptions" in run.stdout


def test_karpenter_submodule_matches_the_addon_and_node_class(sample, capacity_tf):
    doc = parsed(capacity_tf["rendered/terraform/prod/shared/capacity.tf"])
    karpenter = modules(doc)["karpenter"]
    assert (karpenter["source"], karpenter["version"]) == MODULES["karpenter"]
    assert karpenter["queue_name"] == "companyos-prod-karpenter" and karpenter["enable_spot_termination"] is True
    assert (karpenter["namespace"], karpenter["service_account"]) == ("kube-system", "karpenter")
    # the add-on's values name the same queue and the EC2NodeClass the same node role
    addons = sample.result.files["rendered/argocd/prod/addons.yaml"].decode()
    assert "interruptionQueue: companyos-prod-karpenter" in addons
    assert "role: companyos-prod-karpenter-node" in sample.result.files["rendered/argocd/prod/capacity/nodepools.yaml"].decode()
    assert karpenter["node_iam_role_name"] == "companyos-prod-karpenter-node"
    tags = resources(doc)
    assert tags[("aws_ec2_tag", "karpenter_subnet")]["count"] == sample.model.base_settings(None, "prod").network.az_count
    assert tags[("aws_ec2_tag", "karpenter_node_security_group")]["value"] == "companyos-prod"


def test_owned_queue_admits_keda_and_its_service_consumes_it(sample, capacity_tf):
    doc = parsed(capacity_tf["rendered/terraform/prod/tenant-hooli/capacity.tf"])
    queue = modules(doc)["queue_worker_jobs"]
    assert queue["name"] == "companyos-prod-hooli-jobs" and queue["create_dlq"] is True
    (statement,) = queue["queue_policy_statements"].values()
    assert statement["actions"] == ["sqs:GetQueueAttributes"]
    keda = model_addons.role_arn(sample.model.environment("prod").accounts.shared_services, sample.model.platform, "prod", "keda")
    assert statement["principals"][0]["identifiers"] == [keda]
    consume = resources(doc)[("aws_iam_role_policy", "queue_worker_jobs")]
    assert consume["role"] == "${module.irsa_worker.name}"
    assert "sqs:ReceiveMessage" in consume["policy"] and "module.queue_worker_jobs.queue_arn" in consume["policy"]
    # a tenant whose services own no queue gets none
    globex = parsed(capacity_tf["rendered/terraform/prod/tenant-globex/capacity.tf"])
    assert not [m for m in modules(globex) if m.startswith("queue_")]


def test_rds_proxy_for_the_pool_that_declares_pooling(sample, capacity_tf):
    doc = parsed(capacity_tf["rendered/terraform/prod/pool-standard/capacity.tf"])
    res = resources(doc)
    proxy = res[("aws_db_proxy", "db")]
    assert proxy["default_auth_scheme"] == "IAM_AUTH" and proxy["require_tls"] is True and proxy["engine_family"] == "POSTGRESQL"
    assert res[("aws_db_proxy_target", "db")]["db_instance_identifier"] == "${module.db.db_instance_identifier}"
    assert "rds-db:connect" in res[("aws_iam_role_policy", "db_proxy")]["policy"]
    # the tenants' database secrets read the pool's db_address output: now the proxy
    outputs = parsed(sample.result.files["rendered/terraform/prod/pool-standard/outputs.tf"].decode())
    (db_address,) = [o["db_address"] for o in outputs["output"] if "db_address" in o]
    assert db_address["value"] == "${aws_db_proxy.db.endpoint}"
    # the regulated tier declares no pooling: no proxy in its dedicated roots
    acme = parsed(capacity_tf["rendered/terraform/prod/tenant-acme/capacity.tf"])
    assert ("aws_db_proxy", "db") not in resources(acme)


def test_redis_eviction_policy_from_the_catalog(sample):
    main = parsed(sample.result.files["rendered/terraform/prod/pool-standard/main.tf"].decode())
    params = {p["name"]: p["value"] for p in modules(main)["cache"]["parameters"]}
    assert params["maxmemory-policy"] == sample.model.base_settings("standard", "prod").cache.eviction_policy == "volatile-lru"


def test_static_paths_cached_and_compressed_api_not(sample, capacity_tf):
    doc = parsed(capacity_tf["rendered/terraform/prod/tenant-globex/capacity.tf"])
    policy = resources(doc)[("aws_cloudfront_cache_policy", "static")]
    key = policy["parameters_in_cache_key_and_forwarded_to_origin"][0]
    assert key["enable_accept_encoding_gzip"] is True and key["enable_accept_encoding_brotli"] is True
    assert policy["default_ttl"] > 0
    cdn = modules(parsed(sample.result.files["rendered/terraform/prod/tenant-globex/main.tf"].decode()))["cdn"]
    ordered = cdn["ordered_cache_behavior"]
    assert [b["path_pattern"] for b in ordered] == ["/_next/static/*", "/assets/*"]
    assert all(b["cache_policy_id"] == "${aws_cloudfront_cache_policy.static.id}" and b["compress"] is True for b in ordered)
    # everything else (the API) stays on CachingDisabled
    assert cdn["default_cache_behavior"]["cache_policy_id"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    # Origin Shield only where it pays: production
    assert cdn["origin"]["ingress"]["origin_shield"]["enabled"] is True
    dev = modules(parsed(sample.result.files["rendered/terraform/dev/tenant-globex/main.tf"].decode()))["cdn"]
    assert "origin_shield" not in dev["origin"]["ingress"]


def test_capacity_outputs_are_json_safe(capacity_tf):
    """Sanity: every file parses (python-hcl2) and holds at least one block."""
    for path, text in capacity_tf.items():
        doc = parsed(text)
        assert json.dumps(doc) and (doc.get("module") or doc.get("resource")), path
