"""CloudWatch alarms (issue 16 item 5): every root has an ``alarms.tf`` that
parses as HCL, alarms on what the root owns (RDS CPU, storage, connections and replica lag; each Redis
node's CPU and evictions; the queue and its dead-letter queue; CloudFront's 5xx rate in
us-east-1; each NAT gateway of its VPC) with thresholds from ``settings.alarms``, every alarm notifying a topic of the
same root that mails the root's owner; an alarm naming a missing topic fails the render."""

from __future__ import annotations

import json
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

from generator import pipeline, vendor
from generator.catalog import spec
from generator.errors import CatalogErrors
from generator.targets.terraform import alarms
from generator.targets.terraform import target as terraform
from helpers.catalog_edit import override
from helpers.repo import REPO

OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)
ARGS = json.loads((vendor.VENDOR_DIR / "terraform" / "aws-provider-resources.json").read_text())["resources"]["aws_cloudwatch_metric_alarm"]


def _parsed(build: pipeline.Build, root: str) -> dict[str, Any]:
    return hcl2.loads(build.result.files[f"{root}/{alarms.FILENAME}"].decode(), serialization_options=OPTIONS)


def _alarms(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: body for block in doc.get("resource", []) for name, body in block.get("aws_cloudwatch_metric_alarm", {}).items()}


def _modules(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: body for block in doc.get("module", []) for name, body in block.items()}


def _roots(build: pipeline.Build) -> list[terraform.Root]:
    return [r for r in terraform.roots(build.model) if alarms.applies(r)]


def test_every_root_has_alarms_and_the_shared_root_only_its_nat_gateways(sample):
    roots = _roots(sample)
    assert {r.kind for r in roots} == {"shared", "pool", "dedicated", "pooled"}
    for r in roots:
        assert f"{r.dir}/{alarms.FILENAME}" in sample.result.files
    for r in (r for r in roots if r.kind == "shared"):
        found = _alarms(_parsed(sample, r.dir))
        assert found and {b["namespace"] for b in found.values()} == {"AWS/NATGateway"}


def test_alarm_arguments_are_real_provider_arguments(sample):
    known = set(ARGS["arguments"])
    for r in _roots(sample):
        for name, body in _alarms(_parsed(sample, r.dir)).items():
            assert set(body) - {"provider", "__is_block__"} <= known, (r.dir, name, set(body) - known)


def test_what_each_root_watches(sample):
    for r in _roots(sample):
        found = _alarms(_parsed(sample, r.dir))
        metrics = {(b["namespace"], b["metric_name"]) for b in found.values()}
        data = r.kind in ("pool", "dedicated")
        assert (("AWS/RDS", "CPUUtilization") in metrics) is data
        assert (("AWS/RDS", "FreeStorageSpace") in metrics) is data
        assert (("AWS/RDS", "DatabaseConnections") in metrics) is data
        lag = [b for b in found.values() if b["metric_name"] == "ReplicaLag"]
        assert sorted(b["dimensions"]["DBInstanceIdentifier"] for b in lag) == sorted(r.replicas)
        nodes = {b["dimensions"]["CacheClusterId"] for b in found.values() if b["namespace"] == "AWS/ElastiCache"}
        if data:
            c = r.settings.cache
            assert len(nodes) == c.shards * (c.replicas_per_shard + 1)
            assert all(n.startswith(r.names["cache_id"] + "-") for n in nodes)
        else:
            assert not nodes
        queue = r.kind in ("dedicated", "pooled")
        assert (("AWS/SQS", "ApproximateAgeOfOldestMessage") in metrics) is queue
        edge = [b for b in found.values() if b["namespace"] == "AWS/CloudFront"]
        assert bool(edge) is bool(r.edge)
        for b in edge:  # CloudFront's metrics exist only in us-east-1
            assert b["provider"] == "${aws.edge}" and b["dimensions"]["Region"] == "Global"


MODULE_DATA = json.loads((vendor.VENDOR_DIR / "terraform" / "terraform-aws-modules-inputs.json").read_text())
VPC_OUTPUTS = set(MODULE_DATA["terraform-aws-modules/vpc/aws"]["outputs"])


def _nat_gateways_created(main: dict[str, Any]) -> int:
    """What the vpc module creates, read from the rendered main.tf (not from the generator)."""
    vpc = _modules(main)["vpc"]
    assert vpc["enable_nat_gateway"] is True
    if vpc["single_nat_gateway"]:
        return 1
    assert vpc["one_nat_gateway_per_az"] is True
    return len(vpc["azs"])


def _nat_mismatches(build: pipeline.Build) -> list[str]:
    """Roots whose NAT alarms do not cover exactly the NAT gateways their VPC creates."""
    bad = []
    for r in _roots(build):
        nat = [b for b in _alarms(_parsed(build, r.dir)).values() if b["namespace"] == "AWS/NATGateway"]
        if r.kind not in alarms.VPC_KINDS:
            if nat:
                bad.append(r.dir)
            continue
        main = hcl2.loads(build.result.files[f"{r.dir}/main.tf"].decode(), serialization_options=OPTIONS)
        want = {f"${{module.vpc.natgw_ids[{i}]}}" for i in range(_nat_gateways_created(main))}
        for metric in ("ErrorPortAllocation", "PacketsDropCount"):
            got = [b["dimensions"]["NatGatewayId"] for b in nat if b["metric_name"] == metric]
            if sorted(got) != sorted(want):
                bad.append(f"{r.dir}: {metric} {sorted(got)} != {sorted(want)}")
    return bad


def test_each_nat_gateway_of_each_vpc_is_alarmed(sample):
    assert "natgw_ids" in VPC_OUTPUTS  # the output the dimensions index is real
    assert not _nat_mismatches(sample)
    counts = {r.env.name: r.settings.network.nat_gateways for r in _roots(sample) if r.kind == "shared"}
    assert set(counts.values()) == {"single", "per_az"}  # the sample exercises both shapes
    for r in _roots(sample):
        for b in _alarms(_parsed(sample, r.dir)).values():
            if b["namespace"] == "AWS/NATGateway":
                assert b["statistic"] == "Sum" and b["comparison_operator"] == "GreaterThanThreshold"
                assert b["alarm_actions"] == [f"${{module.{alarms.TOPIC}.topic_arn}}"]


def test_a_nat_alarm_per_az_where_the_vpc_has_a_single_gateway_is_caught(monkeypatch):
    # Plant the fault: one alarm per AZ even where the VPC has a single NAT gateway (dev):
    # natgw_ids[1] would not exist and the plan would fail.
    monkeypatch.setattr(alarms, "nat_gateways", lambda settings: settings.network.az_count)
    bad = _nat_mismatches(pipeline.build(REPO))
    assert bad and any("/dev/" in b for b in bad)


def test_thresholds_come_from_the_catalog(repo):
    override(
        repo,
        "acme",
        "prod",
        {
            "alarms": {
                "database_cpu_percent": 55,
                "database_free_storage_gb": 20,
                "edge_5xx_percent": 2.5,
                "database_connections": 150,
                "nat_port_allocation_errors": 3,
                "nat_packets_dropped": 42,
            }
        },
    )
    build = pipeline.build(repo)
    found = _alarms(_parsed(build, "rendered/terraform/prod/tenant-acme"))
    assert found["db_cpu"]["threshold"] == 55
    assert found["db_free_storage"]["threshold"] == 20 * 1024**3
    assert found["edge_5xx"]["threshold"] == 2.5
    assert found["db_connections"]["threshold"] == 150
    assert found["db_connections"]["metric_name"] == "DatabaseConnections" and found["db_connections"]["statistic"] == "Maximum"
    assert found["nat_port_allocation_0"]["threshold"] == 3 and found["nat_packets_dropped_0"]["threshold"] == 42
    other = _alarms(_parsed(build, "rendered/terraform/prod/tenant-umbrella"))
    assert other["db_cpu"]["threshold"] == 80  # the built-in default, untouched
    assert other["nat_port_allocation_0"]["threshold"] == 0 and other["nat_packets_dropped_0"]["threshold"] == 1000


def test_every_alarm_notifies_a_topic_of_its_root_that_mails_the_owner(sample):
    for r in _roots(sample):
        doc = _parsed(sample, r.dir)
        modules = _modules(doc)
        topics = {name for name, body in modules.items() if body["source"] == "terraform-aws-modules/sns/aws"}
        owner = r.deployment.tenant.owner if r.deployment is not None else sample.model.platform.owner
        for name in topics:
            assert modules[name]["subscriptions"]["owner"] == {"protocol": "email", "endpoint": owner}
            assert modules[name]["kms_master_key_id"] == f"${{module.{name}_kms.key_id}}"
            [statement] = modules[f"{name}_kms"]["key_statements"]
            assert statement["principals"][0]["identifiers"] == ["cloudwatch.amazonaws.com"]
        for alarm in _alarms(doc).values():
            [action] = alarm["alarm_actions"]
            module = action.removeprefix("${module.").removesuffix(".topic_arn}")
            assert module in topics
            edge = alarm["namespace"] == "AWS/CloudFront"
            assert ("providers" in modules[module]) is edge  # the topic is in the alarm's region


def test_an_alarm_naming_a_missing_topic_fails_the_contract_check(monkeypatch):
    # Plant the fault: CloudFront's alarms stay, their us-east-1 topic is not declared.
    original = alarms.context
    monkeypatch.setattr(alarms, "context", lambda root, owner: {**original(root, owner), "edge_topic": None})
    with pytest.raises(CatalogErrors) as caught:
        pipeline.build(REPO)
    found = [e for e in caught.value.errors if "sns_topic" in e.message and alarms.EDGE_TOPIC in e.message]
    assert found, [e.message for e in caught.value.errors][:3]
    assert all(str(e.location.path).startswith("tenants/") for e in found)


def test_alarm_settings_are_validated():
    with pytest.raises(ValueError):
        spec.AlarmSettings(
            database_cpu_percent=120,
            database_free_storage_gb=10,
            replica_lag_seconds=60,
            cache_cpu_percent=75,
            cache_evictions=1000,
            queue_oldest_message_seconds=900,
            edge_5xx_percent=5,
            database_connections=400,
            evaluation_periods=3,
        )
