"""The producers the DR workflows rely on (issue 15): the CI roles failover/failback, the region
drill, chaos and the restore drill assume (GitHub OIDC trust on this repository and the exact
job context, least privilege), the dr-verify vault and its restore role, Argo CD's controller
annotated with its standby role, tenant IRSA roles trusting the standby cluster's issuer too.
Each is read from the real render with a real HCL/YAML/JSON parser; each absence is planted
and caught by ``companyos check`` (the iam_role / terraform_output contracts)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hcl2
import yaml
from hcl2 import SerializationOptions

from generator import pipeline
from generator.ops import isolation
from helpers.repo import CliResult

OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)
ORG = "companyos"
REPO = "companyos/platform-gitops"
SHARED = "400000000001"
POOL = "400000000002"
ACME = "410000000101"
UMBRELLA = "410000000102"
VERIFY = "400000000009"
BRANCH_SUB = f"repo:{REPO}:ref:refs/heads/main"
PROD_SUB = f"repo:{REPO}:environment:prod"
ENTRY = f"arn:aws:iam::{SHARED}:role/{ORG}-ci-failover"
TEMPLATE = "templates/terraform/disaster_recovery.tf.j2"


def _doc(sample: pipeline.Build, path: str) -> dict[str, Any]:
    return hcl2.loads(sample.result.files[path].decode(), serialization_options=OPTIONS)


def _blocks(doc: dict[str, Any], kind: str, rtype: str) -> dict[str, dict[str, Any]]:
    return {n: b for item in doc.get(kind, []) for t, named in item.items() if t == rtype for n, b in named.items()}


def _statements(policy_doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(policy_doc["statement"])


def _trust(doc: dict[str, Any], role: dict[str, Any]) -> dict[str, Any]:
    name = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", role["assume_role_policy"])
    assert name is not None, role["assume_role_policy"]
    (statement,) = _statements(_blocks(doc, "data", "aws_iam_policy_document")[name.group(1)])
    return statement


def _principals(statement: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in p.items() if k != "__is_block__"} for p in statement["principals"]]


def _condition(statement: dict[str, Any], suffix: str) -> list[str]:
    return [
        v for c in statement.get("condition", []) if c["variable"].endswith(suffix) and c["test"] == "StringEquals" for v in c["values"]
    ]


def _role_policy(doc: dict[str, Any], role_resource: str) -> list[dict[str, Any]]:
    (policy,) = [
        p for p in _blocks(doc, "resource", "aws_iam_role_policy").values() if p["role"] == f"${{aws_iam_role.{role_resource}.id}}"
    ]
    name = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", policy["policy"])
    assert name is not None
    return _statements(_blocks(doc, "data", "aws_iam_policy_document")[name.group(1)])


def test_github_roles_trust_only_this_repository_and_their_job_context(sample: pipeline.Build) -> None:
    doc = _doc(sample, "rendered/terraform/prod/shared/dr.tf")
    roles = _blocks(doc, "resource", "aws_iam_role")
    github = _blocks(doc, "resource", "aws_iam_openid_connect_provider")["github"]
    assert github["url"] == "https://token.actions.githubusercontent.com" and github["client_id_list"] == ["sts.amazonaws.com"]
    expected = {"ci_failover": PROD_SUB, "ci_region_drill": BRANCH_SUB, "ci_chaos": BRANCH_SUB, "ci_restore_drill": BRANCH_SUB}
    for resource, sub in expected.items():
        trust = _trust(doc, roles[resource])
        assert trust["actions"] == ["sts:AssumeRoleWithWebIdentity"]
        assert _condition(trust, ":sub") == [sub], resource
        assert _condition(trust, ":aud") == ["sts.amazonaws.com"], resource
        (principal,) = trust["principals"]
        assert principal["type"] == "Federated" and "openid_connect_provider.github" in principal["identifiers"][0]
    assert roles["ci_failover"]["name"] == f"{ORG}-ci-failover"
    assert roles["ci_restore_drill"]["provider"] == "${aws.dr_verify}"


def test_the_workflows_and_the_plan_name_exactly_the_rendered_roles(sample: pipeline.Build) -> None:
    files = sample.result.files
    plan = json.loads(files["rendered/runbooks/prod/failover-plan.json"])
    assert plan["failover_role"] == ENTRY
    # the per-tenant parts of the plan (hosts, secrets) are one file per tenant, so onboarding adds a file
    parts = [json.loads(body) for path, body in files.items() if path.startswith("rendered/runbooks/prod/failover/")]
    assert {p["tenant"] for p in parts} == {"acme", "globex", "hooli", "initech", "umbrella"}
    chained = {db["role"] for db in plan["databases"]} | {s["role"] for p in parts for s in p["secrets"]}
    chained |= {h["role"] for p in parts for h in p["hosts"]}
    assert chained == {f"arn:aws:iam::{a}:role/{ORG}-ci-failover" for a in (POOL, ACME, UMBRELLA)}
    shared = _doc(sample, "rendered/terraform/prod/shared/dr.tf")
    (chain,) = _role_policy(shared, "ci_failover")
    assert chain["actions"] == ["sts:AssumeRole"] and set(chain["resources"]) == chained
    # every chained role exists in its account's data root and trusts only the entry role
    for root in ("pool-standard", "tenant-acme", "tenant-umbrella"):
        doc = _doc(sample, f"rendered/terraform/prod/{root}/dr.tf")
        role = _blocks(doc, "resource", "aws_iam_role")["ci_failover"]
        assert role["name"] == f"{ORG}-ci-failover"
        trust = _trust(doc, role)
        assert _principals(trust) == [{"type": "AWS", "identifiers": [ENTRY]}], root
    # pooled tenants live in the pool's account: exactly one failover role there
    for tenant in ("globex", "hooli", "initech"):
        doc = _doc(sample, f"rendered/terraform/prod/tenant-{tenant}/dr.tf")
        assert "ci_failover" not in _blocks(doc, "resource", "aws_iam_role")
    region_drill = yaml.safe_load(files[".github/workflows/region-drill.yml"])
    chaos = yaml.safe_load(files[".github/workflows/chaos-fis.yml"])
    restore = yaml.safe_load(files[".github/workflows/restore-drill.yml"])

    def assumed(wf: dict[str, Any]) -> set[str]:
        return {s["with"]["role-to-assume"] for job in wf["jobs"].values() for s in job["steps"] if "role-to-assume" in s.get("with", {})}

    assert assumed(region_drill) == {f"arn:aws:iam::{SHARED}:role/{ORG}-ci-region-drill"}
    assert assumed(chaos) == {f"arn:aws:iam::{SHARED}:role/{ORG}-ci-chaos"}
    assert assumed(restore) == {f"arn:aws:iam::{VERIFY}:role/{ORG}-ci-restore-drill"}
    # the jobs run in the contexts the trusts name
    assert "environment" not in region_drill["jobs"]["drill-prod"] and "environment" not in chaos["jobs"]["fis-prod"]


def test_policies_are_scoped_to_the_named_resources(sample: pipeline.Build) -> None:
    shared = _doc(sample, "rendered/terraform/prod/shared/dr.tf")
    drill = {s["sid"]: s for s in _role_policy(shared, "ci_region_drill")}
    assert drill["StartTheDrill"]["resources"] == [
        f"arn:aws:ssm:eu-west-1:{SHARED}:automation-definition/{ORG}-prod-region-failover-drill:*"
    ]
    assert drill["HandTheDrillItsRole"]["resources"] == ["${aws_iam_role.drill.arn}"]
    chaos = {s["sid"]: s for s in _role_policy(shared, "ci_chaos")}
    assert chaos["StartTheTemplates"]["resources"][:2] == [
        "${aws_fis_experiment_template.pod_termination.arn}",
        "${aws_fis_experiment_template.instance_termination.arn}",
    ]
    restore = {s["sid"]: s for s in _role_policy(shared, "ci_restore_drill")}
    assert restore["ReadTheVault"]["resources"] == ["${aws_backup_vault.verify.arn}"]
    assert restore["CheckAndDeleteTheDrillCopies"]["resources"] == [f"arn:aws:rds:eu-central-1:{VERIFY}:db:drill-*"]
    assert restore["HandBackupTheRestoreRole"]["resources"] == ["${aws_iam_role.backup_restore.arn}"]
    for root, account in (("pool-standard", POOL), ("tenant-acme", ACME)):
        doc = _doc(sample, f"rendered/terraform/prod/{root}/dr.tf")
        grants = {s["sid"]: s for s in _role_policy(doc, "ci_failover")}
        assert grants["PromoteTheReplica"]["resources"] == ["${aws_db_instance.dr_replica.arn}"]
        secrets = grants["RepointTheDatabaseSecrets"]["resources"]
        assert secrets and all(s.startswith("arn:aws:secretsmanager:") and f":{account}:secret:{ORG}/prod/" in s for s in secrets)
        assert {s.split(":")[3] for s in secrets} == {"eu-west-1", "eu-central-1"}
        wildcard = [sid for sid, s in grants.items() if "*" in s["resources"]]
        assert wildcard == ["FindTheHealthChecks"], root  # ListHealthChecks has no resource-level permission
    acme = {s["sid"]: s for s in _role_policy(_doc(sample, "rendered/terraform/prod/tenant-acme/dr.tf"), "ci_failover")}
    assert set(acme["FlipTheHealthChecks"]["resources"]) == {"${aws_route53_health_check.api.arn}", "${aws_route53_health_check.web.arn}"}
    assert all(f"/{ORG}/prod/acme/" in s or f"{ORG}/prod/acme/" in s for s in acme["RepointTheDatabaseSecrets"]["resources"])


def test_dr_verify_vault_admits_copies_from_the_data_accounts_only(sample: pipeline.Build) -> None:
    shared = _doc(sample, "rendered/terraform/prod/shared/dr.tf")
    vault = _blocks(shared, "resource", "aws_backup_vault")["verify"]
    assert vault["provider"] == "${aws.dr_verify}" and vault["name"] == f"{ORG}-prod-dr-verify"
    assert vault["kms_key_arn"] == "${aws_kms_key.verify.arn}"
    (copy,) = _statements(_blocks(shared, "data", "aws_iam_policy_document")["verify_vault"])
    assert copy["actions"] == ["backup:CopyIntoBackupVault"]
    assert _principals(copy) == [{"type": "AWS", "identifiers": [f"arn:aws:iam::{a}:root" for a in (POOL, ACME, UMBRELLA)]}]
    restore = _blocks(shared, "resource", "aws_iam_role")["backup_restore"]
    assert restore["name"] == f"{ORG}-backup-restore" and restore["provider"] == "${aws.dr_verify}"
    assert _principals(_trust(shared, restore)) == [{"type": "Service", "identifiers": ["backup.amazonaws.com"]}]
    # every data root's copy rule targets exactly this vault, and the provider reaches that account
    for root in ("pool-standard", "tenant-acme", "tenant-umbrella"):
        plan = _blocks(_doc(sample, f"rendered/terraform/prod/{root}/dr.tf"), "resource", "aws_backup_plan")["data"]
        targets = {c["destination_vault_arn"] for rule in plan["rule"] for c in rule.get("copy_action", [])}
        assert f"arn:aws:backup:eu-central-1:{VERIFY}:backup-vault:{ORG}-prod-dr-verify" in targets
    providers = _doc(sample, "rendered/terraform/prod/shared/providers.tf")
    (verify,) = [p for item in providers["provider"] for p in item.values() if p.get("alias") == "dr_verify"]
    assert verify["region"] == "eu-central-1" and f"::{VERIFY}:" in json.dumps(verify)


def test_argocd_controller_is_annotated_with_its_standby_role(sample: pipeline.Build) -> None:
    values = yaml.safe_load(sample.result.files["rendered/argocd/prod/controller-values.yaml"])
    role = values["controller"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role == f"arn:aws:iam::{SHARED}:role/{ORG}-prod-argocd-standby"
    shared = _doc(sample, "rendered/terraform/prod/shared/dr.tf")
    trust = _trust(shared, _blocks(shared, "resource", "aws_iam_role")["argocd_standby"])
    assert _condition(trust, ":sub") == ["system:serviceaccount:argocd:argocd-application-controller"]
    dev = yaml.safe_load(sample.result.files["rendered/argocd/dev/controller-values.yaml"])
    assert "serviceAccount" not in dev["controller"]  # no standby, no role


def test_tenant_irsa_roles_trust_the_standby_issuer_for_the_same_service_account(sample: pipeline.Build) -> None:
    shared = _doc(sample, "rendered/terraform/prod/shared/dr.tf")
    assert _blocks(shared, "output", "standby_oidc_issuer_url") or any("standby_oidc_issuer_url" in o for o in shared["output"])
    seen = 0
    for tenant in ("acme", "globex", "hooli", "initech", "umbrella"):
        main = _doc(sample, f"rendered/terraform/prod/tenant-{tenant}/main.tf")
        for item in main["module"]:
            for body in item.values():
                providers = body.get("oidc_providers")
                if not providers:
                    continue
                assert set(providers) == {"shared", "standby"}
                assert providers["standby"]["namespace_service_accounts"] == providers["shared"]["namespace_service_accounts"]
                assert providers["standby"]["namespace_service_accounts"][0].startswith(f"tenant-{tenant}:")
                assert "standby" in providers["standby"]["provider_arn"]
                assert body["trust_condition_test"] == "StringEquals"
                seen += 1
    assert seen >= 5
    # the issuer is registered where the roles live: dedicated accounts and the pool's
    for root in ("pool-standard", "tenant-acme", "tenant-umbrella"):
        oidc = _blocks(_doc(sample, f"rendered/terraform/prod/{root}/dr.tf"), "resource", "aws_iam_openid_connect_provider")["standby"]
        assert "standby_oidc_issuer_url" in oidc["url"]
    dev = _doc(sample, "rendered/terraform/dev/tenant-acme/main.tf")
    assert all(set(b["oidc_providers"]) == {"shared"} for item in dev["module"] for b in item.values() if b.get("oidc_providers"))


def test_isolation_reads_the_standby_trust_too(sample: pipeline.Build, tmp_path: Path) -> None:
    for path, data in sample.result.files.items():
        if path.startswith("rendered/"):
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_bytes(data)
    assert isolation.analyze(tmp_path, ORG) == []
    main = tmp_path / "rendered/terraform/prod/tenant-globex/main.tf"
    text = main.read_text(encoding="utf-8")
    standby = text.index("standby = {")
    planted = text[:standby] + text[standby:].replace('["tenant-globex:api"]', '["tenant-hooli:api"]', 1)
    main.write_text(planted, encoding="utf-8")
    findings = isolation.analyze(tmp_path, ORG)
    assert any(f.layer == "identity" and f.source == "hooli" and f.target == "globex" for f in findings), isolation.to_text(findings)


def _plant(root: Path, path: str, old: str, new: str) -> None:
    file = root / path
    text = file.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    file.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_missing_or_widened_producer_fails_check(repo: Path, companyos: Callable[..., CliResult]) -> None:
    # the chaos role is gone, the failover entry trusts any branch, the chained role trusts
    # anyone, Argo CD's role trusts another service account, the standby issuer is not output
    _plant(repo, TEMPLATE, 'resource "aws_iam_role" "ci_chaos" {', 'resource "aws_iam_user" "ci_chaos" {')
    _plant(
        repo,
        TEMPLATE,
        "assume_role_policy = data.aws_iam_policy_document.ci_environment_trust.json",
        "assume_role_policy = data.aws_iam_policy_document.ci_branch_trust.json",
    )
    _plant(repo, TEMPLATE, "identifiers = {{ [dr.ci.trusted] | hcl }}", 'identifiers = ["*"]')
    _plant(  # through the macro call (templates/terraform/_argocd.tf.j2 writes the trust)
        repo,
        TEMPLATE,
        "dr.argocd.namespace, dr.argocd.service_account) }}",
        'dr.argocd.namespace, "argocd-server") }}',
    )
    _plant(repo, TEMPLATE, 'output "standby_oidc_issuer_url" {', 'output "standby_issuer" {')
    result = companyos("check", cwd=repo)
    assert result.code == 2, result.out + result.err
    err = result.err
    assert re.search(
        r"environments/prod\.yaml:\d+:\d+: .*chaos-fis\.yml consumes iam_role 'arn:aws:iam::400000000001:role/companyos-ci-chaos'.*no rendered file provides it",
        err,
    )
    assert re.search(
        rf"failover-plan\.json consumes iam_role '{re.escape(ENTRY)}' in prod that trusts {re.escape(PROD_SUB)}, but the producer gives trusts {re.escape(BRANCH_SUB)}",
        err,
    )
    assert f"role/{ORG}-ci-failover' in prod that assumable by {ENTRY}, but the producer gives assumable by *" in err
    assert "controller-values.yaml consumes iam_role" in err and "argocd:argocd-server" in err
    assert "consumes terraform_output 'rendered/terraform/prod/shared:standby_oidc_issuer_url'" in err
    assert "Traceback" not in err


def _cron_minutes(expression: str) -> int:
    minute, hour = re.fullmatch(r"cron\((\S+) (\S+) \* \* \? \*\)", expression).groups()  # type: ignore[union-attr]
    return int(hour) * 60 + int(minute)


def _recorder_gaps(docs: dict[str, dict[str, Any]], sql: str) -> list[str]:
    """Data roots whose dr-verify copy would carry no fresh manifest: no schedule running the
    recorder SQL in a task of this root before the daily-copies rule."""
    gaps = []
    for path, doc in docs.items():
        plans = _blocks(doc, "resource", "aws_backup_plan")
        if not plans:
            continue
        (copy_rule,) = [r for r in plans["data"]["rule"] if r.get("copy_action")]
        schedule = _blocks(doc, "resource", "aws_scheduler_schedule").get("integrity")
        task = _blocks(doc, "resource", "aws_ecs_task_definition").get("integrity")
        if schedule is None or task is None:
            gaps.append(f"{path}: no recorder")
            continue
        if _cron_minutes(schedule["schedule_expression"]) >= _cron_minutes(copy_rule["schedule"]):
            gaps.append(f"{path}: recorder at {schedule['schedule_expression']}, copy at {copy_rule['schedule']}")
        if sql not in task["container_definitions"]:
            gaps.append(f"{path}: the task does not run rendered/ci/integrity-record.sql")
    return gaps


def test_the_integrity_recorder_runs_in_each_data_root_before_the_daily_copy(sample: pipeline.Build) -> None:
    files = sample.result.files
    # the task embeds the statements; the file adds the two-line generated banner on top
    *banner, sql = files["rendered/ci/integrity-record.sql"].decode().split("\n", 2)
    assert banner[0].startswith("-- Generated by companyos") and banner[1].startswith("-- Sources:")
    paths = [p for p in files if p.startswith("rendered/terraform/prod/") and p.endswith("/dr.tf")]
    docs = {p: _doc(sample, p) for p in paths}
    assert _recorder_gaps(docs, json.dumps(sql)[1:-1]) == []
    assert sum(1 for d in docs.values() if _blocks(d, "resource", "aws_scheduler_schedule").get("integrity")) == 3
    pool = docs["rendered/terraform/prod/pool-standard/dr.tf"]
    schedule = _blocks(pool, "resource", "aws_scheduler_schedule")["integrity"]
    assert schedule["schedule_expression"] == "cron(40 3 * * ? *)" and schedule["schedule_expression_timezone"] == "UTC"
    (target,) = schedule["target"]
    assert target["arn"] == "${aws_ecs_cluster.integrity.arn}"
    (ecs,) = target["ecs_parameters"]
    (network,) = ecs["network_configuration"]
    assert network["subnets"] == "${module.vpc.private_subnets}" and network["assign_public_ip"] is False
    # the database admits the recorder's group, which reaches only the database (and HTTPS out)
    ingress = _blocks(pool, "resource", "aws_vpc_security_group_ingress_rule")["db_integrity"]
    assert ingress["security_group_id"] == "${aws_security_group.db.id}"
    assert ingress["referenced_security_group_id"] == "${aws_security_group.integrity.id}"
    execution = {s["sid"]: s for s in _role_policy(pool, "integrity_execution")}
    assert execution["TheMasterSecretOnly"]["resources"] == ["${module.db.db_instance_master_user_secret_arn}"]
    # planted: no recorder in one root, or one that runs after the copy
    without = dict(docs)
    tenant = "rendered/terraform/prod/tenant-acme/dr.tf"
    without[tenant] = {**docs[tenant], "resource": [i for i in docs[tenant]["resource"] if "aws_scheduler_schedule" not in i]}
    assert _recorder_gaps(without, json.dumps(sql)[1:-1]) == [f"{tenant}: no recorder"]
    late = hcl2.loads(files[tenant].decode().replace('"cron(40 3 * * ? *)"', '"cron(30 4 * * ? *)"'), serialization_options=OPTIONS)
    assert _recorder_gaps({tenant: late}, json.dumps(sql)[1:-1]) == [f"{tenant}: recorder at cron(30 4 * * ? *), copy at cron(0 4 * * ? *)"]
