"""The restore drill's network and verifier in ``dr-verify`` (issue 15): read from the real
render with python-hcl2 and PyYAML. The restored copies sit in an isolated VPC at the DR twin
of the plan's ``restore-drill`` allocation, in the ``restore-drill`` DB subnet group, admitting
5432 from the verifier task only; the verifier runs the pinned psql image by digest; the CI role
gets exactly what the workflow's new steps call; the workflow runs the verifier instead of psql
on the runner. Planted faults are caught by these checks and by ``companyos check``."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hcl2
import yaml
from hcl2 import SerializationOptions

from generator import pipeline
from generator.model import networks
from helpers.repo import CliResult

OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)
ORG = "companyos"
VERIFY = "400000000009"
DR_REGION = "eu-central-1"
DR_TF = "rendered/terraform/prod/shared/dr.tf"
TEMPLATE = "templates/terraform/disaster_recovery.tf.j2"
VERIFY_PROVIDER = "${aws.dr_verify}"


def _doc(files: dict[str, bytes], path: str = DR_TF) -> dict[str, Any]:
    return hcl2.loads(files[path].decode(), serialization_options=OPTIONS)


def _blocks(doc: dict[str, Any], kind: str, rtype: str) -> dict[str, dict[str, Any]]:
    return {n: b for item in doc.get(kind, []) for t, named in item.items() if t == rtype for n, b in named.items()}


def _modules(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: b for item in doc.get("module", []) for n, b in item.items()}


def _statements(doc: dict[str, Any], policy: str) -> dict[str, dict[str, Any]]:
    return {s["sid"]: s for s in _blocks(doc, "data", "aws_iam_policy_document")[policy]["statement"]}


def _db_ingress_problems(doc: dict[str, Any]) -> list[str]:
    """What is wrong with the ingress of the restored copies' security group: anything but
    5432 from the verifier's group (inline rules, CIDRs, other groups, other ports)."""
    problems = []
    group = _blocks(doc, "resource", "aws_security_group").get("restore_drill_db")
    if group is None:
        return ["no security group for the restored copies"]
    if group.get("ingress"):
        problems.append("inline ingress on the restored copies' group")
    rules = [r for r in _blocks(doc, "resource", "aws_vpc_security_group_ingress_rule").values()]
    rules = [r for r in rules if r["security_group_id"] == "${aws_security_group.restore_drill_db.id}"]
    if not rules:
        problems.append("nothing may reach the restored copies")
    for rule in rules:
        if rule.get("referenced_security_group_id") != "${aws_security_group.verifier.id}":
            problems.append(f"ingress from {rule.get('referenced_security_group_id') or rule.get('cidr_ipv4') or rule}")
        if (rule.get("ip_protocol"), rule.get("from_port"), rule.get("to_port")) != ("tcp", 5432, 5432):
            problems.append(f"ingress on {rule.get('ip_protocol')} {rule.get('from_port')}-{rule.get('to_port')}")
        if any(key in rule for key in ("cidr_ipv4", "cidr_ipv6", "prefix_list_id")):
            problems.append("ingress from an address range")
    return problems


def test_the_drill_vpc_is_the_dr_twin_of_its_allocation_and_overlaps_nothing(sample: pipeline.Build) -> None:
    nets: networks.Networks = sample.model.catalog.single("networks").spec
    vpc = _modules(_doc(sample.result.files))["vpc_restore_drill"]
    cidr = ipaddress.IPv4Network(vpc["cidr"])
    assert cidr == networks.dr_cidr(nets, "prod", networks.DRILL_VPC)
    assert vpc["providers"] == {"aws": VERIFY_PROVIDER}
    # every VPC of the plan, in both regions of every environment, stays clear of it
    for env, block in nets.environments.items():
        for key in block.vpcs:
            others = [networks.vpc_cidr(nets, env, key), networks.dr_cidr(nets, env, key)]
            if (env, key) == ("prod", networks.DRILL_VPC):
                others = others[:1]
            assert all(not cidr.overlaps(other) for other in others), (env, key)
    # private subnets only inside it, no way out: no public subnets, NAT gateway or internet gateway
    assert all(ipaddress.IPv4Network(s).subnet_of(cidr) for s in vpc["private_subnets"])
    assert len(vpc["private_subnets"]) == len(vpc["azs"]) >= 2
    assert "public_subnets" not in vpc and vpc["enable_nat_gateway"] is False and vpc["create_igw"] is False
    assert vpc["flow_log_cloudwatch_log_group_kms_key_id"] == "${module.kms_restore_drill.key_arn}"
    endpoints = _modules(_doc(sample.result.files))["vpc_endpoints_restore_drill"]
    assert endpoints["vpc_id"] == "${module.vpc_restore_drill.vpc_id}"
    assert set(endpoints["endpoints"]) == {"s3", "ecr.api", "ecr.dkr", "logs"}


def test_the_restore_drill_subnet_group_is_the_drill_vpcs_private_subnets(sample: pipeline.Build) -> None:
    doc = _doc(sample.result.files)
    group = _blocks(doc, "resource", "aws_db_subnet_group")["restore_drill"]
    assert group["name"] == "restore-drill" and group["provider"] == VERIFY_PROVIDER
    assert group["subnet_ids"] == "${module.vpc_restore_drill.private_subnets}"
    # and the workflow restores into exactly that group
    workflow = yaml.safe_load(sample.result.files[".github/workflows/restore-drill.yml"])
    (restore,) = [s for s in workflow["jobs"]["restore"]["steps"] if s.get("id") == "restore"]
    assert restore["env"]["SUBNET_GROUP"] == group["name"]
    assert "DBSubnetGroupName: $group" in restore["run"] and "VpcSecurityGroupIds: ([$net[0].db_security_group] | tojson)" in restore["run"]


def test_the_restored_copies_admit_only_the_verifier_on_5432(sample: pipeline.Build) -> None:
    doc = _doc(sample.result.files)
    assert _db_ingress_problems(doc) == []
    groups = _blocks(doc, "resource", "aws_security_group")
    assert groups["restore_drill_db"]["vpc_id"] == groups["verifier"]["vpc_id"] == "${module.vpc_restore_drill.vpc_id}"
    egress = {n: r for n, r in _blocks(doc, "resource", "aws_vpc_security_group_egress_rule").items() if n.startswith("verifier")}
    assert all(r["security_group_id"] == "${aws_security_group.verifier.id}" for r in egress.values())
    assert egress["verifier_db"]["referenced_security_group_id"] == "${aws_security_group.restore_drill_db.id}"
    assert not any("cidr_ipv4" in r for r in egress.values())  # endpoints and the S3 prefix list only: no internet


def test_a_widened_or_missing_drill_group_is_caught(repo: Path) -> None:
    template = repo / TEMPLATE
    text = template.read_text(encoding="utf-8")
    rule = 'resource "aws_vpc_security_group_ingress_rule" "restore_drill_db_verifier" {'
    start = text.index(rule)
    end = text.index("\n}\n", start)
    widened = text[start:end].replace("referenced_security_group_id = aws_security_group.verifier.id", 'cidr_ipv4 = "0.0.0.0/0"')
    template.write_text(text[:start] + widened + text[end:], encoding="utf-8")
    problems = _db_ingress_problems(_doc(pipeline.build(repo).result.files))
    assert "ingress from 0.0.0.0/0" in problems and "ingress from an address range" in problems


def test_the_verifier_runs_the_pinned_psql_image_by_digest(sample: pipeline.Build) -> None:
    doc = _doc(sample.result.files)
    client = sample.model.platform.postgres_client
    task = _blocks(doc, "resource", "aws_ecs_task_definition")["verifier"]
    assert task["provider"] == VERIFY_PROVIDER and task["requires_compatibilities"] == ["FARGATE"]
    (image,) = re.findall(r'image = "([^"]+)"', task["container_definitions"])
    digest = client.digests["16.4"]
    assert image == f"{VERIFY}.dkr.ecr.{DR_REGION}.amazonaws.com/restore-drill/docker/library/postgres:16.4@{digest}"
    # the same manifest as the recorder's image in the data roots (one pin, two registries)
    recorder = _blocks(_doc(sample.result.files, "rendered/terraform/prod/pool-standard/dr.tf"), "resource", "aws_ecs_task_definition")
    (recorded,) = re.findall(r'image = "([^"]+)"', recorder["integrity"]["container_definitions"])
    assert recorded == client.image("16.4") and recorded.split("/", 1)[1] == image.split("/restore-drill/", 1)[1]
    cache = _blocks(doc, "resource", "aws_ecr_pull_through_cache_rule")["restore_drill"]
    assert cache["ecr_repository_prefix"] == "restore-drill" and cache["upstream_registry_url"] == "public.ecr.aws"
    assert "taskRoleArn" not in task["container_definitions"] and "task_role_arn" not in task  # no AWS credentials inside
    log = _blocks(doc, "resource", "aws_cloudwatch_log_group")["verifier"]
    assert log["kms_key_id"] == "${module.kms_restore_drill.key_arn}" and log["retention_in_days"] == 90
    execution = _statements(doc, "verifier_execution")
    assert execution["WriteItsLogs"]["resources"] == ["${aws_cloudwatch_log_group.verifier.arn}:*"]
    assert execution["PullThePinnedImageThroughTheCache"]["resources"] == [
        f"arn:aws:ecr:{DR_REGION}:{VERIFY}:repository/restore-drill/docker/library/postgres"
    ]
    assert [sid for sid, s in execution.items() if "*" in s["resources"]] == ["AuthenticateToTheRegistry"]


def test_the_restore_drill_role_gets_exactly_the_verifiers_resources(sample: pipeline.Build) -> None:
    doc = _doc(sample.result.files)
    grants = _statements(doc, "ci_restore_drill")
    run = grants["RunTheVerifier"]
    assert run["actions"] == ["ecs:RunTask"]
    assert run["resources"] == [
        "${aws_ecs_task_definition.verifier.arn_without_revision}",
        "${aws_ecs_task_definition.verifier.arn_without_revision}:*",
    ]
    (cluster,) = run["condition"]
    assert (cluster["test"], cluster["variable"], cluster["values"]) == (
        "ArnEquals",
        "ecs:cluster",
        ["${aws_ecs_cluster.restore_drill.arn}"],
    )
    follow = grants["FollowTheVerifier"]
    assert follow["actions"] == ["ecs:DescribeTasks"]
    assert follow["resources"] == [f"arn:aws:ecs:{DR_REGION}:{VERIFY}:task/{ORG}-prod-restore-drill/*"]
    passed = grants["HandTheVerifierItsRole"]
    assert passed["actions"] == ["iam:PassRole"] and passed["resources"] == ["${aws_iam_role.verifier_execution.arn}"]
    assert passed["condition"][0]["values"] == ["ecs-tasks.amazonaws.com"]
    logs = grants["ReadTheVerifierOutput"]
    assert logs["actions"] == ["logs:GetLogEvents"]
    assert logs["resources"] == [f"arn:aws:logs:{DR_REGION}:{VERIFY}:log-group:/{ORG}-prod/restore-verifier:log-stream:verifier/*"]
    assert grants["ReadTheDrillNetwork"]["resources"] == ["${aws_ssm_parameter.restore_drill.arn}"]
    decrypt = grants["DecryptTheDrillNetwork"]
    assert decrypt["actions"] == ["kms:Decrypt"] and decrypt["resources"] == ["${module.kms_restore_drill.key_arn}"]
    assert decrypt["condition"][0]["values"] == [f"arn:aws:ssm:{DR_REGION}:{VERIFY}:parameter/{ORG}/prod/restore-drill/network"]
    new = (
        "ReadTheDrillNetwork",
        "DecryptTheDrillNetwork",
        "RunTheVerifier",
        "FollowTheVerifier",
        "HandTheVerifierItsRole",
        "ReadTheVerifierOutput",
    )
    assert not any("*" in grants[sid]["resources"] for sid in new)
    # the names the grants and the workflow use are the rendered ones
    assert _blocks(doc, "resource", "aws_ecs_cluster")["restore_drill"]["name"] == f"{ORG}-prod-restore-drill"
    assert _blocks(doc, "resource", "aws_cloudwatch_log_group")["verifier"]["name"] == f"/{ORG}-prod/restore-verifier"


def _integrity_step(files: dict[str, bytes]) -> dict[str, Any]:
    workflow = yaml.safe_load(files[".github/workflows/restore-drill.yml"])
    return next(s for s in workflow["jobs"]["restore"]["steps"] if s.get("name", "").startswith("Integrity checks"))


def test_the_workflow_runs_the_verifier_in_the_drill_vpc_not_psql_on_the_runner(sample: pipeline.Build) -> None:
    files = sample.result.files
    doc = _doc(files)
    workflow = yaml.safe_load(files[".github/workflows/restore-drill.yml"])
    runs = [s.get("run", "") for job in workflow["jobs"].values() for s in job["steps"]]
    assert not any(re.search(r"(^|[\s|;(])psql\b", line) for run in runs for line in run.splitlines() if not line.strip().startswith("#"))
    step = _integrity_step(files)
    task = _blocks(doc, "resource", "aws_ecs_task_definition")["verifier"]
    assert step["env"]["CLUSTER"] == _blocks(doc, "resource", "aws_ecs_cluster")["restore_drill"]["name"]
    assert step["env"]["TASK_DEFINITION"] == task["family"]
    assert f'name = "{step["env"]["CONTAINER"]}"' in task["container_definitions"]
    assert step["env"]["LOG_GROUP"] == _blocks(doc, "resource", "aws_cloudwatch_log_group")["verifier"]["name"]
    script = step["run"]
    assert 'aws ecs run-task --region "$region" --cluster "$CLUSTER" --task-definition "$TASK_DEFINITION"' in script
    assert "--launch-type FARGATE" in script and '--network-configuration "$network"' in script
    assert "aws ecs wait tasks-stopped" in script and "exitCode" in script and "aws logs get-log-events" in script
    # subnets and security group: the drill network parameter dr.tf writes (its private subnets, the verifier's group)
    assert "subnets: .subnets, securityGroups: [.verifier_security_group]" in script and '"DISABLED"' in script
    parameter = _blocks(doc, "resource", "aws_ssm_parameter")["restore_drill"]
    (network,) = [s for s in workflow["jobs"]["restore"]["steps"] if s.get("name", "").startswith("The drill network")]
    assert network["env"]["PARAMETER"] == parameter["name"]
    assert "subnets                 = module.vpc_restore_drill.private_subnets" in files[DR_TF].decode()
    assert "verifier_security_group = aws_security_group.verifier.id" in files[DR_TF].decode()
    # the throw-away password: a container override from a file, never on a command line or in git
    assert "env.DRILL_PASSWORD" in script and '--overrides "file://$RUNNER_TEMP/overrides.json"' in script
    assert 'rm -f "$RUNNER_TEMP/overrides.json"' in script
    for key in ("row_counts_match", "checksums_match", "smoke", "within_rto", "copy_within_a_day", "manifest_recorded", "encrypted"):
        assert key in script


def test_a_dropped_subnet_group_or_renamed_verifier_fails_check(repo: Path, companyos: Callable[..., CliResult]) -> None:
    template = repo / TEMPLATE
    text = template.read_text(encoding="utf-8")
    text = text.replace('resource "aws_db_subnet_group" "restore_drill" {', 'resource "aws_db_subnet_group_unused" "restore_drill" {', 1)
    text = text.replace("  name = {{ dr.drill.log_group | hcl }}", '  name = "/elsewhere"', 1)
    template.write_text(text, encoding="utf-8")
    result = companyos("check", cwd=repo)
    assert result.code == 2, result.out + result.err
    assert re.search(
        r"environments/prod\.yaml:\d+:\d+: \.github/workflows/restore-drill\.yml consumes ecs_task "
        rf"'arn:aws:ecs:{DR_REGION}:{VERIFY}:task-definition/{ORG}-prod-restore-verifier'",
        result.err,
    )
    assert "log_group /elsewhere" in result.err and "subnet_group None" in result.err
    assert "Traceback" not in result.err
