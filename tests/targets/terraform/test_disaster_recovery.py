"""The standby region (issue 15): dr.tf of every prod root parses, passes the vendored provider
and module data, and encodes the catalog (replica lag alarm at the RPO, 35-day backups copied
to the DR region and dr-verify, replicated secrets, PRIMARY/SECONDARY records per public host,
chaos stopped by the SLO alarm); bad DR input is a located error with exit 2."""

from __future__ import annotations

import re
import subprocess
import sys

import hcl2
import pytest
from hcl2 import SerializationOptions

from generator import vendor
from helpers.catalog_edit import edit_yaml
from helpers.repo import snapshot

OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)
VALIDATE_TF = vendor.terraform_data_dir().parent / "tools/validate_tf.py"


def _dr(sample) -> dict[str, dict]:
    return {
        p: hcl2.loads(d.decode(), serialization_options=OPTIONS)
        for p, d in sample.result.files.items()
        if p.startswith("rendered/terraform/") and p.endswith("/dr.tf")
    }


def _resources(doc, kind):
    return {n: b for item in doc.get("resource", []) for t, named in item.items() if t == kind for n, b in named.items()}


def test_only_environments_with_a_standby_get_dr_tf(sample):
    envs = {p.split("/")[2] for p in _dr(sample)}
    assert envs == {e.name for e in sample.model.environments if e.disaster_recovery is not None} == {"prod"}


def test_dr_tf_passes_the_vendored_provider_and_module_data(sample, tmp_path):
    for path, data in sample.result.files.items():
        if path.endswith("/dr.tf"):
            target = tmp_path / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    out = subprocess.run([sys.executable, str(VALIDATE_TF), "-q", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


def test_every_prod_database_has_a_replica_whose_lag_alarm_is_the_rpo(sample):
    docs = _dr(sample)
    prod = next(e for e in sample.model.environments if e.name == "prod")
    data_roots = [p for p, d in docs.items() if _resources(d, "aws_backup_plan")]
    assert any("pool-standard" in p for p in data_roots) and any("tenant-acme" in p for p in data_roots)
    for path in data_roots:
        doc = docs[path]
        (replica,) = _resources(doc, "aws_db_instance").values()
        assert replica["replicate_source_db"] == "${module.db.db_instance_arn}"
        assert replica["kms_key_id"] == "${aws_kms_replica_key.dr.arn}"
        alarm = _resources(doc, "aws_cloudwatch_metric_alarm")["dr_replica_lag"]
        assert alarm["threshold"] == prod.rpo_minutes * 60 and alarm["metric_name"] == "ReplicaLag"


def test_backups_35_days_pitr_and_copies_to_the_dr_region_and_dr_verify(sample):
    prod = next(e for e in sample.model.environments if e.name == "prod")
    for path, doc in _dr(sample).items():
        for plan in _resources(doc, "aws_backup_plan").values():
            rules = plan["rule"]
            assert any(r.get("enable_continuous_backup") is True for r in rules), path
            assert all(r["lifecycle"][0]["delete_after"] == 35 for r in rules)
            copies = [c["destination_vault_arn"] for r in rules for c in r.get("copy_action", [])]
            assert "${aws_backup_vault.dr.arn}" in copies
            assert any(c.startswith(f"arn:aws:backup:{prod.aws.dr_region}:{prod.accounts.dr_verify}:") for c in copies), copies


def test_secrets_replicate_to_the_dr_region(sample):
    for path, data in sample.result.files.items():
        if path.startswith("rendered/terraform/prod/tenant-") and path.endswith("/main.tf"):
            doc = hcl2.loads(data.decode(), serialization_options=OPTIONS)
            for name, secret in _resources(doc, "aws_secretsmanager_secret").items():
                assert secret["replica"][0]["region"] == "eu-central-1", (path, name)


def test_failover_records_per_public_host(sample):
    docs = _dr(sample)
    checked = 0
    for path, doc in docs.items():
        records = _resources(doc, "aws_route53_record")
        for check in _resources(doc, "aws_route53_health_check"):
            if path.endswith("shared/dr.tf"):
                continue
            kinds = {records[f"{check}_{k}"]["failover_routing_policy"][0]["type"] for k in ("primary", "secondary")}
            assert kinds == {"PRIMARY", "SECONDARY"}
            checked += 1
    assert checked >= 3


def test_chaos_stops_on_the_slo_alarm_and_the_drill_is_an_automation(sample):
    doc = _dr(sample)["rendered/terraform/prod/shared/dr.tf"]
    templates = _resources(doc, "aws_fis_experiment_template")
    assert set(templates) == {"pod_termination", "instance_termination"}
    for t in templates.values():
        assert t["stop_condition"][0]["value"] == "${aws_cloudwatch_metric_alarm.slo_fast_burn.arn}"
    assert _resources(doc, "aws_ssm_document")["region_failover_drill"]["document_type"] == "Automation"
    standby = next(m for item in doc["module"] for n, m in item.items() if n == "eks_standby")
    assert standby["eks_managed_node_groups"]["standby"]["desired_size"] == 2


BAD = [
    pytest.param(lambda d: d["aws"].__setitem__("dr_region", d["aws"]["region"]), "dr_region must differ from region", "aws", id="same"),
    pytest.param(
        lambda d: d["aws"].__setitem__("dr_region", "us-west-2"), "is not in this environment's allowed_regions", "aws", id="region"
    ),
    pytest.param(
        lambda d: d["disaster_recovery"].__setitem__("region_drill_schedule", "every quarter please"),
        "is not a cron schedule",
        "disaster_recovery",
        id="cron",
    ),
]


@pytest.mark.parametrize(("change", "message", "key"), BAD)
def test_bad_dr_input_is_located_exit_2_nothing_written(repo, companyos, change, message, key):
    edit_yaml(repo / "environments/prod.yaml", change)
    before = snapshot(repo)
    result = companyos("render", cwd=repo)
    assert result.code == 2, result.out
    lines = [line for line in result.err.splitlines() if message in line]
    assert lines, result.err
    path, line, col = lines[0].split(":")[:3]
    assert path == "environments/prod.yaml" and int(line) > 1 and int(col) >= 1
    assert "Traceback" not in result.err and snapshot(repo) == before


def test_standby_cluster_reaches_every_replica_over_a_peering(sample):
    """The replica admits the standby cluster's VPC, and that VPC is peered and routed both
    ways with the data root's DR VPC (before, nothing connected them)."""
    docs = _dr(sample)
    shared = docs["rendered/terraform/prod/shared/dr.tf"]
    outputs = {k for item in shared.get("output", []) for k in item}
    assert {"dr_vpc_cidr", "dr_private_route_table_ids"} <= outputs
    data_roots = [p for p, doc in docs.items() if _resources(doc, "aws_db_instance").get("dr_replica")]
    assert data_roots
    for path in data_roots:
        doc = docs[path]
        ingress = _resources(doc, "aws_vpc_security_group_ingress_rule")["db_dr"]
        assert ingress["cidr_ipv4"] == "${data.terraform_remote_state.shared.outputs.dr_vpc_cidr}", path
        peering = _resources(doc, "aws_vpc_peering_connection")["standby"]
        assert peering["vpc_id"] == "${module.vpc_dr.vpc_id}"
        assert peering["peer_vpc_id"] == "${data.terraform_remote_state.shared.outputs.dr_vpc_id}"
        assert _resources(doc, "aws_vpc_peering_connection_accepter")["standby"]["provider"] == "${aws.shared_dr}"
        routes = _resources(doc, "aws_route")
        assert routes["to_standby"]["destination_cidr_block"] == ingress["cidr_ipv4"]
        assert routes["from_standby"]["provider"] == "${aws.shared_dr}"
    providers = {p: sample.result.files[p.replace("dr.tf", "providers.tf")].decode() for p in data_roots}
    for text in providers.values():
        assert re.search(r'alias\s*=\s*"shared_dr"\s*\n\s*region\s*=\s*"eu-central-1"', text), text


def test_standby_cluster_admits_argo_cd_and_its_nodes_get_ssm(sample):
    shared = _dr(sample)["rendered/terraform/prod/shared/dr.tf"]
    eks = next(b for item in shared["module"] for n, b in item.items() if n == "eks_standby")
    assert eks["vpc_id"] == "${module.vpc_dr.vpc_id}"
    assert eks["access_entries"]["argocd"]["principal_arn"] == "${aws_iam_role.argocd_standby.arn}"
    rule = eks["security_group_additional_rules"]["argocd"]
    assert rule["from_port"] == 443 and rule["cidr_blocks"] == [_shared_cidr(sample)]
    policies = eks["eks_managed_node_groups"]["standby"]["iam_role_additional_policies"]
    assert policies == {"ssm": "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"}
    trust = next(
        b
        for item in shared["data"]
        for t, named in item.items()
        if t == "aws_iam_policy_document"
        for n, b in named.items()
        if n == "argocd_standby_trust"
    )
    conditions = {c["variable"].split(":")[-1]: c["values"] for c in trust["statement"][0]["condition"]}
    assert conditions["sub"] == ["system:serviceaccount:argocd:argocd-application-controller"]
    assert _resources(shared, "aws_route")["from_standby"]["destination_cidr_block"] == _shared_cidr(sample)


def _shared_cidr(sample) -> str:
    """The primary VPC's CIDR, as the shared root outputs it."""
    outputs = hcl2.loads(sample.result.files["rendered/terraform/prod/shared/outputs.tf"].decode(), serialization_options=OPTIONS)
    return next(item["vpc_cidr"]["value"] for item in outputs["output"] if "vpc_cidr" in item)


def test_chaos_pod_targets_come_from_the_tenant_records_not_a_namespace_list(sample):
    """Onboarding edits no line of the shared dr.tf (issue 19): the FIS pod-delete actions and
    targets iterate the tenants/<tenant>.json records, each of which names its namespace."""
    files = sample.result.files
    for env in (e for e in sample.model.environments if e.disaster_recovery is not None):
        text = files[f"rendered/terraform/{env.name}/shared/dr.tf"].decode()
        blocks = [named for b in hcl2.loads(text)["resource"] for t, named in b.items() if t.strip('"') == "aws_fis_experiment_template"]
        fis = next(body for named in blocks for n, body in named.items() if n.strip('"') == "pod_termination")
        assert "action" not in fis and "target" not in fis and fis["dynamic"], fis.keys()  # no literal per-namespace block
        assert "local.tenant_records" in text
        for d in sample.model.in_environment(env.name):
            assert d.namespace not in text, d.namespace
            record = files[f"rendered/terraform/{env.name}/shared/tenants/{d.name}.json"].decode()
            assert f'"namespace": "{d.namespace}"' in record
