"""CloudWatch alarms (issue 16 item 5): every root has an ``alarms.tf`` that
parses as HCL, alarms on what the root owns (RDS CPU, storage, connections and replica lag; each Redis
node's CPU and evictions; the queue and its dead-letter queue; CloudFront's 5xx rate in
us-east-1; each NAT gateway of its VPC; the tenant ALB's 5xx rate and p99 latency, found by the load
balancer controller's tags on the tenant's cell cluster) with thresholds from ``settings.alarms``, every alarm
notifying a topic of the same root, account and region that mails the root's owner; an alarm naming a missing
topic, or an ALB lookup on a cluster the tenant's Applications do not deploy to, fails the render."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
from typing import Any

import hcl2
import pytest
import yaml
from hcl2 import SerializationOptions

from generator import pipeline, vendor
from generator.catalog import spec
from generator.errors import CatalogErrors
from generator.ops.allocate import allocate
from generator.targets.terraform import alarms
from generator.targets.terraform import target as terraform
from helpers.catalog_edit import edit_yaml, override
from helpers.repo import REPO, copy_repo

OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)
PROVIDER = json.loads((vendor.VENDOR_DIR / "terraform" / "aws-provider-resources.json").read_text())
ARGS = PROVIDER["resources"]["aws_cloudwatch_metric_alarm"]
DATA = PROVIDER["data_sources"]
META = PROVIDER["meta_arguments"]


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
    known = set(ARGS["arguments"]) | set(ARGS["blocks"]) | set(META["resource"])
    query, metric = ARGS["nested"]["metric_query"], ARGS["nested"]["metric_query"]["nested"]["metric"]
    seen_queries = 0
    for r in _roots(sample):
        for name, body in _alarms(_parsed(sample, r.dir)).items():
            assert set(body) - {"__is_block__"} <= known, (r.dir, name, set(body) - known)
            for q in body.get("metric_query", []):
                seen_queries += 1
                assert set(q) - {"__is_block__"} <= set(query["arguments"]) | set(query["blocks"]), (r.dir, name, q)
                for m in q.get("metric", []):
                    assert set(m) - {"__is_block__"} <= set(metric["arguments"]), (r.dir, name, m)
                    assert set(metric["required"]) <= set(m)
    assert seen_queries  # the origin 5xx rate is metric math: its blocks were checked too
    lbs = DATA["aws_lbs"]
    for r in _roots(sample):
        for block in _parsed(sample, r.dir).get("data", []):
            for body in block.get("aws_lbs", {}).values():
                assert set(body) - {"__is_block__"} <= set(lbs["arguments"]) | set(META["data"])


def test_what_each_root_watches(sample):
    for r in _roots(sample):
        found = {k: b for k, b in _alarms(_parsed(sample, r.dir)).items() if "metric_query" not in b}
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
        nat = [b for b in _alarms(_parsed(build, r.dir)).values() if b.get("namespace") == "AWS/NATGateway"]
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
            if b.get("namespace") == "AWS/NATGateway":
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
            # the topic is in the alarm's account and region (the same provider)
            assert modules[module].get("providers", {}).get("aws") == alarm.get("provider"), (r.dir, module)


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


# --- the tenant's ALB (5xx rate, p99 latency): found by the load balancer controller's tags ---


def _data_lbs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: body for block in doc.get("data", []) for name, body in block.get("aws_lbs", {}).items()}


def _ingress_groups(build: pipeline.Build, env: str, tenant: str) -> set[str]:
    """The group.name annotations of the tenant's rendered Helm values (the Ingresses the controller reads)."""
    groups = set()
    for path, data in build.result.files.items():
        if path.startswith(f"rendered/helm/{env}/{tenant}/"):
            values = yaml.safe_load(data)
            if values.get("ingress", {}).get("enabled"):
                groups.add(values["ingress"]["annotations"]["alb.ingress.kubernetes.io/group.name"])
    return groups


def _cell_cluster(build: pipeline.Build, env: str, tenant: str) -> str:
    """The cluster the ApplicationSet whose git files generator reads the tenant's cell file deploys to."""
    [cell_file] = [p for p in build.result.files if p.startswith(f"rendered/argocd/{env}/cells/") and p.endswith(f"/{tenant}.json")]
    for appset in yaml.safe_load_all(build.result.files[f"rendered/argocd/{env}/applicationsets.yaml"]):
        [pattern] = appset["spec"]["generators"][0]["git"]["files"]
        if fnmatch.fnmatch(cell_file, pattern["path"]):
            return appset["spec"]["template"]["spec"]["destination"]["name"]
    raise AssertionError(f"no ApplicationSet reads {cell_file}")


def _origin_mismatches(build: pipeline.Build) -> list[str]:
    """Tenant roots whose ALB alarms do not find exactly the ALB their public services' Ingresses make."""
    bad = []
    for r in _roots(build):
        if r.tenant is None:
            continue
        doc = _parsed(build, r.dir)
        lbs = _data_lbs(doc)
        groups = _ingress_groups(build, r.env.name, r.tenant)
        if not groups:
            if lbs:
                bad.append(f"{r.dir}: an ALB lookup without a public service")
            continue
        [group] = groups  # every public service of the tenant shares one ALB
        want = {
            "elbv2.k8s.aws/cluster": _cell_cluster(build, r.env.name, r.tenant),
            "ingress.k8s.aws/stack": group,
            "ingress.k8s.aws/resource": "LoadBalancer",
        }
        if [body.get("tags") for body in lbs.values()] != [want] or lbs["origin"].get("provider") != "${aws.shared}":
            bad.append(f"{r.dir}: {lbs} != {want}")
    return bad


def test_each_public_tenants_alb_is_found_by_the_controllers_tags_on_its_cells_cluster(sample):
    assert not _origin_mismatches(sample)
    assert any(_data_lbs(_parsed(sample, r.dir)) for r in _roots(sample))  # the sample has public tenants


def test_the_alb_alarms_cover_what_the_lookup_finds_with_catalog_thresholds(repo):
    override(repo, "acme", "prod", {"alarms": {"origin_5xx_percent": 1.5, "origin_latency_p99_seconds": 0.8}})
    build = pipeline.build(repo)
    doc = _parsed(build, "rendered/terraform/prod/tenant-acme")
    found = _alarms(doc)
    five, latency = found["origin_5xx"], found["origin_latency"]
    for alarm in (five, latency):
        assert alarm["for_each"] == "${local.origin_load_balancers}" and alarm["provider"] == "${aws.shared}"
        assert alarm["alarm_actions"] == alarm["ok_actions"] == [f"${{module.{alarms.ORIGIN_TOPIC}.topic_arn}}"]
    [local] = [b["origin_load_balancers"] for b in doc["locals"] if "origin_load_balancers" in b]
    assert "data.aws_lbs.origin.arns" in local  # keyed over what the lookup found, nothing named
    assert five["threshold"] == 1.5 and latency["threshold"] == 0.8
    assert latency["extended_statistic"] == "p99" and latency["metric_name"] == "TargetResponseTime"
    assert latency["dimensions"] == {"LoadBalancer": "${each.value}"}
    queries = {q["id"]: q for q in five["metric_query"]}
    [returned] = [q for q in queries.values() if q["return_data"]]
    referenced = set(re.findall(r"[a-z_0-9]+", returned["expression"])) & set(queries)
    assert referenced == set(queries) - {returned["id"]}  # the expression reads every metric, and only those
    metrics = {q["metric"][0]["metric_name"] for q in queries.values() if "metric" in q}
    assert metrics == {"RequestCount", "HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count"}
    assert all(q["metric"][0]["dimensions"] == {"LoadBalancer": "${each.value}"} for q in queries.values() if "metric" in q)
    [check] = [b["origin_load_balancer"] for b in doc["check"]]
    assert "length(data.aws_lbs.origin.arns) == 1" in check["assert"][0]["condition"]
    other = _alarms(_parsed(build, "rendered/terraform/prod/tenant-umbrella"))
    assert other["origin_5xx"]["threshold"] == 5.0  # the built-in default, untouched


def test_the_alb_lookup_follows_a_tenant_to_another_cell(tmp_path):
    root = copy_repo(tmp_path / "repo")
    edit_yaml(
        root / "environments/prod.yaml",
        lambda d: d.__setitem__("cells", [{"name": "blue", "max_tenants": 3}, {"name": "green", "max_tenants": 3}]),
    )
    allocate(root)
    build = pipeline.build(root)
    assert not _origin_mismatches(build)
    clusters = {
        _data_lbs(_parsed(build, r.dir))["origin"]["tags"]["elbv2.k8s.aws/cluster"]
        for r in _roots(build)
        if r.env.name == "prod" and r.edge
    }
    assert clusters == {"companyos-prod", "companyos-prod-green"}  # both cells hold a public tenant


def test_an_alb_lookup_on_the_wrong_cluster_fails_the_contract_check(monkeypatch):
    # Plant the fault: the tenant roots look for their ALB on a cluster their Applications never deploy to.
    original = alarms.origin_alarms
    monkeypatch.setattr(
        alarms, "origin_alarms", lambda root: o and dataclasses.replace(o, cluster="companyos-elsewhere") if (o := original(root)) else None
    )
    with pytest.raises(CatalogErrors) as caught:
        pipeline.build(REPO)
    found = [e for e in caught.value.errors if "ingress_group 'companyos-elsewhere/" in e.message]
    assert found, [e.message for e in caught.value.errors][:3]
    assert all(str(e.location.path).startswith("catalog/services/") for e in found)
