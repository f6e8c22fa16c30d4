"""Tenant network and edge isolation, checked on the rendered tree (docs/isolation.md).

Each checker returns a list of findings for one parsed file; the planted-fault tests run the
same checker on a faulty variant and see it fire."""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import hcl2
import jsonschema
import yaml

from generator import pipeline
from generator.targets.terraform import addressing
from generator.vendor import crd_schema_dir
from helpers.diagnostics import at, by_rule, line_of, validate_errors

SG_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
POD_REF = re.compile(r"^\d{12}/\$\{data\.terraform_remote_state\.shared\.outputs\.pod_security_group_ids\[each\.key\]\}$")
#: The pools' bootstrap Jobs' group (targets/pool_bootstrap.py): a pool's database admits it, nothing else does.
POOL_ADMIN_REF = re.compile(r"^\d{12}/\$\{data\.terraform_remote_state\.shared\.outputs\.pool_admin_security_group_id\}$")


def parse(text: str) -> Any:
    """python-hcl2's tree with the quotes it keeps around keys and string values removed."""
    return _norm(hcl2.loads(text))


def _norm(value: Any) -> Any:
    if isinstance(value, dict):
        return {_unquote(k): _norm(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return _unquote(value)


def _files(sample: pipeline.Build, prefix: str, suffix: str) -> dict[str, str]:
    return {p: data.decode() for p, data in sample.result.files.items() if p.startswith(prefix) and p.endswith(suffix)}


def _resources(doc: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for block in doc.get("resource", []):
        for kind, named in block.items():
            if kind.strip('"') == rtype:
                out.update({k.strip('"'): v for k, v in named.items()})
    return out


def _unquote(value: Any) -> Any:
    return value.strip('"') if isinstance(value, str) else value


# --- checkers -------------------------------------------------------------------------------------


def data_store_findings(doc: dict[str, Any], tenants: list[str], records: list[str] | None = None, *, pool: bool = False) -> list[str]:
    """The db and cache security groups of one data root admit only ``tenants``' pod groups:
    no CIDR rule, no inline rule, every rule a cross-account reference to a pod group, for_each
    over exactly ``tenants`` (a pool's ``local.pool_tenants``: the tenants ``records`` name,
    read from its ``tenants/*.json``)."""
    found = []
    groups = _resources(doc, "aws_security_group")
    for group in ("db", "cache"):
        if group not in groups:
            found.append(f"no aws_security_group.{group}")
            continue
        if "ingress" in groups[group]:
            found.append(f"aws_security_group.{group} has inline ingress")
    for kind in ("aws_security_group_rule", "aws_vpc_security_group_ingress_rule"):
        for name, body in _resources(doc, kind).items():
            target = str(body.get("security_group_id", ""))
            if not any(f"aws_security_group.{g}." in target for g in ("db", "cache")):
                continue
            for key in ("cidr_blocks", "cidr_ipv4", "ipv6_cidr_blocks", "prefix_list_ids", "prefix_list_id"):
                if key in body:
                    found.append(f"{kind}.{name} admits {key} {body[key]}")
            source = _unquote(body.get("source_security_group_id", body.get("referenced_security_group_id", "")))
            if pool and name == "db_from_pool_admin" and POOL_ADMIN_REF.match(str(source)) and "for_each" not in body:
                continue  # a pool's database only (docs/isolation.md, the pool bootstrap)
            if not POD_REF.match(str(source)):
                found.append(f"{kind}.{name} admits {source!r}, not a tenant pod security group")
            keys = sorted(re.findall(r'"([^"]+)"', str(body.get("for_each", ""))))
            if "local.pool_tenants" in str(body.get("for_each", "")):
                keys = sorted(records or [])
            if keys != sorted(tenants):
                found.append(f"{kind}.{name} admits the pod groups of {keys}, expected {sorted(tenants)}")
    for name, body in _resources(doc, "aws_security_group_rule").items():
        if _unquote(body.get("type")) == "ingress" and "security_group_id" not in body:
            found.append(f"{name}: ingress rule without a group")
    return found


def network_policy_findings(docs: list[dict[str, Any]], forbidden: list[str]) -> list[str]:
    """Every egress rule of every NetworkPolicy names its destinations (``to:``), and no ipBlock
    reaches into a ``forbidden`` CIDR (other tenants' data VPCs) except by listing it in ``except``."""
    found = []
    bad = [ipaddress.ip_network(c) for c in forbidden]
    for doc in docs:
        if doc.get("kind") != "NetworkPolicy":
            continue
        name = doc["metadata"]["name"]
        for i, rule in enumerate(doc["spec"].get("egress", [])):
            if not rule.get("to"):
                found.append(f"{name} egress[{i}] has no to:")
            for peer in rule.get("to", []):
                block = peer.get("ipBlock")
                if block is None:
                    continue
                net = ipaddress.ip_network(block["cidr"])
                excepted = [ipaddress.ip_network(e) for e in block.get("except", [])]
                for other in bad:
                    if net.overlaps(other) and not any(other.subnet_of(e) for e in excepted):
                        found.append(f"{name} egress[{i}] reaches {other} through {net}")
    return found


def alb_findings(doc: dict[str, Any]) -> list[str]:
    """The ALB security group admits 443 from CloudFront's origin-facing prefix list only."""
    found = []
    data = {
        k.strip('"'): v
        for b in doc.get("data", [])
        for t, named in b.items()
        if t.strip('"') == "aws_ec2_managed_prefix_list"
        for k, v in named.items()
    }
    if _unquote(data.get("cloudfront", {}).get("name")) != "com.amazonaws.global.cloudfront.origin-facing":
        found.append("no CloudFront origin-facing prefix list")
    if "alb" not in _resources(doc, "aws_security_group"):
        found.append("no aws_security_group.alb")
    for kind in ("aws_vpc_security_group_ingress_rule", "aws_security_group_rule"):
        for name, body in _resources(doc, kind).items():
            if "aws_security_group.alb." not in str(body.get("security_group_id", "")):
                continue
            if _unquote(body.get("type", "ingress")) != "ingress":
                continue
            if body.get("prefix_list_id") != "${data.aws_ec2_managed_prefix_list.cloudfront.id}" or {
                body.get("from_port"),
                body.get("to_port"),
            } != {443}:
                found.append(f"{kind}.{name} admits more than 443 from CloudFront: {body}")
    return found


def origin_header_findings(doc: dict[str, Any]) -> list[str]:
    """CloudFront adds the origin header from random_password, and the ALB's WAF requires the same."""
    found = []
    cdn = next((b["cdn"] for b in doc.get("module", []) if "cdn" in b), None)
    header = cdn["origin"]["ingress"].get("custom_header", {}) if cdn else {}
    if list(header.values()) != ["${random_password.origin_secret.result}"]:
        found.append(f"origin header is not the random_password: {header}")
    waf = _resources(doc, "aws_wafv2_web_acl").get("origin")
    if waf is None or "block" not in json.dumps(waf["default_action"]):
        found.append("no regional WAF blocking by default")
    elif "${random_password.origin_secret.result}" not in json.dumps(waf["rule"]):
        found.append("the WAF rule does not check the origin secret")
    return found


# --- the sample render ---------------------------------------------------------------------------


def _data_roots(sample: pipeline.Build) -> dict[str, list[str]]:
    """main.tf of every pool and dedicated root -> the tenants whose pods it must admit."""
    out: dict[str, list[str]] = {}
    for d in sample.model.deployments:
        if d.dedicated:
            out[f"rendered/terraform/{d.env}/tenant-{d.name}/main.tf"] = [d.name]
        else:
            out.setdefault(f"rendered/terraform/{d.env}/pool-{d.tier.name}/main.tf", []).append(d.name)
    return out


def test_every_data_store_admits_only_its_tenants_pod_groups(sample: pipeline.Build) -> None:
    roots = _data_roots(sample)
    assert roots and any(len(t) > 1 for t in roots.values()), "the sample has dedicated tenants and a shared pool"
    files = _files(sample, "rendered/terraform/", "/main.tf")
    for path, tenants in roots.items():
        records = [json.loads(t)["tenant"] for p, t in _files(sample, path.rsplit("/", 1)[0] + "/tenants/", ".json").items()]
        pool = "/pool-" in path
        assert data_store_findings(parse(files[path]), tenants, records, pool=pool) == [], path
        if len(tenants) > 1:  # a pool: a record for a tenant that is not a member is caught
            assert data_store_findings(parse(files[path]), tenants, [*records, "intruder"], pool=pool), path
        assert "10.64.0.0/16" not in files[path].split('module "db"')[0].split('aws_security_group" "db"')[-1]


def test_shared_root_has_a_pod_group_per_tenant_and_enforcing_cni(sample: pipeline.Build) -> None:
    for env in sample.model.environments:
        doc = parse(_files(sample, f"rendered/terraform/{env.name}/shared/", "main.tf")[f"rendered/terraform/{env.name}/shared/main.tf"])
        pods = _resources(doc, "aws_security_group")["pods"]
        assert "local.tenant_records" in pods["for_each"]  # one file per tenant, tenants/<name>.json
        records = _shared_records(sample, env.name)
        assert set(records) == {d.name for d in sample.model.in_environment(env.name)}
        assert all(r["pod_group"] == f"companyos-{env.name}-{name}-pods" for name, r in records.items())
        eks = next(b["eks"] for b in doc["module"] if "eks" in b)
        values = eks["addons"]["vpc-cni"]["configuration_values"]
        assert 'enableNetworkPolicy = "true"' in values and 'ENABLE_POD_ENI = "true"' in values


def test_pod_groups_reach_only_their_own_data_vpc(sample: pipeline.Build) -> None:
    text = sample.result.files["rendered/terraform/prod/shared/main.tf"].decode()
    doc = parse(text)
    egress = _resources(doc, "aws_vpc_security_group_egress_rule")
    db = egress["pods_to_database"]
    assert "t.data_cidr" in db["for_each"] and "t.data_cidr" in egress["pods_to_cache"]["for_each"]
    records = _shared_records(sample, "prod")
    for d in sample.model.in_environment("prod"):
        key = f"tenant-{d.name}" if d.dedicated else f"pool-{d.tier.name}"
        cidr = sample.model.catalog.single("networks").spec.environments["prod"].vpcs[key]  # type: ignore[union-attr]
        assert records[d.name]["data_cidr"] == cidr


def _shared_records(sample: pipeline.Build, env: str) -> dict[str, dict[str, Any]]:
    """The shared root's per-tenant files (what its ``local.tenant_records`` reads), by file name."""
    files = _files(sample, f"rendered/terraform/{env}/shared/tenants/", ".json")
    return {Path(p).stem: json.loads(t) for p, t in files.items()}


def _namespace_docs(sample: pipeline.Build) -> dict[str, list[dict[str, Any]]]:
    return {
        p: [d for d in yaml.safe_load_all(t) if d] for p, t in _files(sample, "rendered/argocd/", ".yaml").items() if "/namespaces/" in p
    }


def _other_tenants_data(sample: pipeline.Build, env: str, tenant: str) -> list[str]:
    """Data VPC CIDRs of every other dedicated tenant (the pool is shared by its own tenants)."""
    vpcs = sample.model.catalog.single("networks").spec.environments[env].vpcs  # type: ignore[union-attr]
    return [cidr for key, cidr in vpcs.items() if key.startswith("tenant-") and key != f"tenant-{tenant}"]


def test_every_network_policy_egress_names_its_destinations(sample: pipeline.Build) -> None:
    namespaces = _namespace_docs(sample)
    assert namespaces
    for path, docs in namespaces.items():
        env, tenant = path.split("/")[2], Path(path).stem
        assert network_policy_findings(docs, _other_tenants_data(sample, env, tenant)) == [], path


def test_https_egress_goes_to_the_shared_vpc_endpoint_subnets(sample: pipeline.Build) -> None:
    """The namespaces' endpoint subnets are the Terraform VPC layout's private subnets."""
    nets = sample.model.catalog.single("networks").spec  # type: ignore[union-attr]
    for path, docs in _namespace_docs(sample).items():
        env = path.split("/")[2]
        private, _public = addressing.subnets(
            ipaddress.ip_network(nets.environments[env].vpcs["shared"]), sample.model.base_settings(None, env).network.az_count
        )
        policy = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "allow-api")
        first = policy["spec"]["egress"][0]
        assert [p["ipBlock"]["cidr"] for p in first["to"]] == private
        assert first["ports"] == [{"protocol": "TCP", "port": 443}]


def security_group_policy_findings(docs: list[dict[str, Any]], group_id: str | None, pods: int) -> list[str]:
    """One namespace file: with a recorded ``group_id`` exactly one SecurityGroupPolicy, for
    every pod, naming that id (never a name: the VPC resource controller resolves ids only),
    applied before the quota that lets ``pods`` pods start; without one, no policy and a quota
    of zero pods (no pod may run without its group)."""
    found = []
    policies = [d for d in docs if d["kind"] == "SecurityGroupPolicy"]
    (quota,) = [d for d in docs if d["kind"] == "ResourceQuota"]
    allowed = quota["spec"]["hard"]["pods"]
    if group_id is None:
        if policies:
            found.append("a SecurityGroupPolicy without a recorded id")
        if allowed != "0":
            found.append(f"pods may start without their security group (quota pods {allowed})")
        return found
    if len(policies) != 1:
        return [f"{len(policies)} SecurityGroupPolicies"]
    (sgp,) = policies
    ns = next(d["metadata"]["name"] for d in docs if d["kind"] == "Namespace")
    if sgp["metadata"]["namespace"] != ns or sgp["spec"]["podSelector"] != {}:
        found.append("the policy does not cover every pod of the namespace")
    ids = sgp["spec"]["securityGroups"]["groupIds"]
    found += [f"groupIds entry {i!r} is not a security group id" for i in ids if not SG_ID.match(i)]
    if ids != [group_id]:
        found.append(f"groupIds {ids}, recorded {group_id}")
    wave = int(sgp["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))
    if wave >= int(quota["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0")):
        found.append("the policy is not applied before the quota that lets pods start")
    if allowed != str(pods):
        found.append(f"quota pods {allowed}, settings say {pods}")
    return found


def _recorded(model: Any, env: str, tenant: str) -> str | None:
    return model.catalog.single("networks").spec.environments[env].pod_security_groups.get(tenant)  # type: ignore[no-any-return]


def test_security_group_policy_names_the_recorded_id_and_validates_against_the_crd(sample: pipeline.Build) -> None:
    schema = json.loads((crd_schema_dir() / "vpcresources.k8s.aws_v1beta1_SecurityGroupPolicy.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    namespaces = _namespace_docs(sample)
    assert len(namespaces) == len(sample.model.deployments)
    for d in sample.model.deployments:
        path = f"rendered/argocd/{d.env}/namespaces/{d.name}.yaml"
        docs = namespaces[path]
        group_id = _recorded(sample.model, d.env, d.name)
        assert group_id is not None, f"the sample records every tenant's id ({path})"
        assert security_group_policy_findings(docs, group_id, d.settings.quota.pods) == [], path
        (sgp,) = [doc for doc in docs if doc["kind"] == "SecurityGroupPolicy"]
        assert list(validator.iter_errors(sgp)) == [], path
        assert sgp["metadata"]["annotations"]["companyos.io/security-group-name"] == f"companyos-{d.env}-{d.name}-pods"
    bad = copy.deepcopy(next(iter(namespaces.values())))
    sgp = next(d for d in bad if d["kind"] == "SecurityGroupPolicy")
    sgp["spec"]["securityGroups"]["groupIds"] = []
    assert list(validator.iter_errors(sgp)), "the schema check can fail"


def test_a_group_name_where_the_id_belongs_is_caught(sample: pipeline.Build) -> None:
    """The fault this design removes: the group's Name tag in groupIds (pods would wait forever
    for a branch ENI), and a policy applied after the quota lets pods start."""
    docs = _namespace_docs(sample)["rendered/argocd/prod/namespaces/acme.yaml"]
    group_id = _recorded(sample.model, "prod", "acme")
    pods = next(d for d in sample.model.deployments if (d.env, d.name) == ("prod", "acme")).settings.quota.pods
    named = copy.deepcopy(docs)
    sgp = next(d for d in named if d["kind"] == "SecurityGroupPolicy")
    sgp["spec"]["securityGroups"]["groupIds"] = ["companyos-prod-acme-pods"]
    assert "groupIds entry 'companyos-prod-acme-pods' is not a security group id" in security_group_policy_findings(named, group_id, pods)
    late = copy.deepcopy(docs)
    del next(d for d in late if d["kind"] == "SecurityGroupPolicy")["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
    assert security_group_policy_findings(late, group_id, pods) == ["the policy is not applied before the quota that lets pods start"]


def test_a_tenant_without_a_recorded_id_is_held_at_zero_pods(repo: Path) -> None:
    """Before the shared root has created a tenant's group (a new tenant, a fresh account) the
    render still succeeds -- the apply that creates the group needs it -- but holds the namespace."""
    path = repo / "catalog/networks.yaml"
    text = path.read_text()
    line = re.search(r"^      umbrella: sg-[0-9a-f]+\n", text.split("  prod:")[1], re.M)
    assert line is not None
    path.write_text(text.split("  prod:")[0] + "  prod:" + text.split("  prod:")[1].replace(line.group(0), "", 1))
    build = pipeline.build(repo)
    docs = [d for d in yaml.safe_load_all(build.result.files["rendered/argocd/prod/namespaces/umbrella.yaml"]) if d]
    assert security_group_policy_findings(docs, None, 0) == []
    quota = next(d for d in docs if d["kind"] == "ResourceQuota")
    assert "record-pod-groups" in quota["metadata"]["annotations"]["companyos.io/held"]
    stage = [d for d in yaml.safe_load_all(build.result.files["rendered/argocd/stage/namespaces/umbrella.yaml"]) if d]
    (kept,) = [d for d in stage if d["kind"] == "SecurityGroupPolicy"]  # other environments keep theirs
    assert kept["spec"]["securityGroups"]["groupIds"] == [_recorded(build.model, "stage", "umbrella")]


def test_a_recorded_name_instead_of_an_id_is_refused_at_its_line(companyos: Any, repo: Path) -> None:
    path = repo / "catalog/networks.yaml"
    text = path.read_text()
    recorded = re.search(r"^      acme: (sg-[0-9a-f]+)$", text, re.M)
    assert recorded is not None
    path.write_text(text.replace(recorded.group(0), "      acme: companyos-dev-acme-pods", 1))
    errors = validate_errors(companyos, repo)
    assert ("catalog/networks.yaml", line_of(path, "acme: companyos-dev-acme-pods")) in [at(e) for e in errors]


# --- companyos record-pod-groups: the id comes from the shared root's outputs ------------------------


def _outputs(ids: dict[str, str]) -> str:
    """What `terraform output -json` prints for the shared root (other outputs included)."""
    return json.dumps(
        {
            "cluster_name": {"sensitive": False, "type": "string", "value": "companyos-prod"},
            "pod_security_group_ids": {"sensitive": False, "type": ["map", "string"], "value": ids},
        }
    )


def test_record_pod_groups_writes_the_applied_ids_and_releases_gone_tenants(companyos: Any, repo: Path) -> None:
    path = repo / "catalog/networks.yaml"
    before = path.read_text()
    ids = {
        "acme": "sg-0123456789abcdef0",
        "globex": "sg-0fedcba9876543210",
        "hooli": "sg-00000000000000001",
        "gone": "sg-0aaaaaaaaaaaaaaaa",
    }
    (repo / "out.json").write_text(_outputs(ids))
    result = companyos("record-pod-groups", "prod", "--outputs", str(repo / "out.json"), cwd=repo)
    assert result.code == 0, result.err
    assert "prod: initech still held" in result.out and "prod: umbrella still held" in result.out
    after = path.read_text()
    recorded = yaml.safe_load(after)["environments"]["prod"]["pod_security_groups"]
    assert recorded == {k: v for k, v in ids.items() if k != "gone"}
    # every other line is unchanged (a review sees only the ids)
    assert [ln for ln in after.splitlines() if "sg-" not in ln and "pod_security_groups" not in ln] == [
        ln for ln in before.splitlines() if "sg-" not in ln and "pod_security_groups" not in ln
    ]
    build = pipeline.build(repo)
    docs = [d for d in yaml.safe_load_all(build.result.files["rendered/argocd/prod/namespaces/acme.yaml"]) if d]
    sgp = next(d for d in docs if d["kind"] == "SecurityGroupPolicy")
    assert sgp["spec"]["securityGroups"]["groupIds"] == ["sg-0123456789abcdef0"]
    held = [d for d in yaml.safe_load_all(build.result.files["rendered/argocd/prod/namespaces/umbrella.yaml"]) if d]
    assert security_group_policy_findings(held, None, 0) == []


def test_record_pod_groups_refuses_what_is_not_an_id(companyos: Any, repo: Path) -> None:
    path = repo / "catalog/networks.yaml"
    before = path.read_text()
    for text in (_outputs({"acme": "companyos-prod-acme-pods"}), "not json", json.dumps({"vpc_id": {"value": "vpc-1"}})):
        (repo / "out.json").write_text(text)
        result = companyos("record-pod-groups", "prod", "--outputs", str(repo / "out.json"), cwd=repo)
        assert result.code == 2, (text, result.out, result.err)
        assert "Traceback" not in result.err
        assert path.read_text() == before


def test_alb_admits_only_cloudfront_and_requires_the_origin_secret(sample: pipeline.Build) -> None:
    edge = [p for p, t in _files(sample, "rendered/terraform/", "/main.tf").items() if 'module "cdn"' in t]
    assert edge
    for path in edge:
        doc = parse(sample.result.files[path].decode())
        assert alb_findings(doc) == [], path
        assert origin_header_findings(doc) == [], path
    values = _files(sample, "rendered/helm/", ".yaml")
    ingress = [yaml.safe_load(t)["ingress"] for t in values.values() if "alb.ingress.kubernetes.io/scheme" in t]
    assert ingress
    for ing in ingress:
        notes = ing["annotations"]
        assert notes["alb.ingress.kubernetes.io/manage-backend-security-group-rules"] == "true"
        assert notes["alb.ingress.kubernetes.io/security-groups"].endswith("-alb")
        assert notes["alb.ingress.kubernetes.io/wafv2-acl-name"].endswith("-origin")


def test_no_origin_secret_literal_in_the_rendered_tree(sample: pipeline.Build) -> None:
    for path, text in _files(sample, "rendered/", "").items():
        for line in text.splitlines():
            if '"x-origin-verify" =' in line or "search_string" in line:
                assert "random_password.origin_secret.result" in line, f"{path}: {line}"


# --- planted faults: the same checkers fire ---------------------------------------------------------


def test_widened_data_security_group_is_caught(sample: pipeline.Build) -> None:
    path = "rendered/terraform/prod/tenant-acme/main.tf"
    text = sample.result.files[path].decode()
    assert data_store_findings(parse(text), ["acme"]) == []
    widened = (
        text
        + '\nresource "aws_security_group_rule" "db_from_vpc" {\n  type = "ingress"\n  security_group_id = aws_security_group.db.id\n  protocol = "tcp"\n  from_port = 5432\n  to_port = 5432\n  cidr_blocks = ["10.64.0.0/16"]\n}\n'
    )
    assert any("10.64.0.0/16" in f for f in data_store_findings(parse(widened), ["acme"]))
    neighbour = text.replace('toset(["acme"])', 'toset(["acme", "umbrella"])', 1)
    assert neighbour != text
    assert data_store_findings(parse(neighbour), ["acme"])


def test_dropped_to_is_caught(sample: pipeline.Build) -> None:
    docs = _namespace_docs(sample)["rendered/argocd/prod/namespaces/acme.yaml"]
    faulty = copy.deepcopy(docs)
    policy = next(d for d in faulty if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "allow-api")
    del policy["spec"]["egress"][-1]["to"]
    last = len(policy["spec"]["egress"]) - 1  # the database rule, after HTTPS and OTLP
    assert network_policy_findings(faulty, []) == [f"allow-api egress[{last}] has no to:"]
    wide = copy.deepcopy(docs)
    policy = next(d for d in wide if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "allow-api")
    policy["spec"]["egress"][-1]["to"] = [{"ipBlock": {"cidr": "10.64.0.0/12"}}]
    assert network_policy_findings(wide, _other_tenants_data(sample, "prod", "acme"))


def test_open_alb_and_literal_header_are_caught(sample: pipeline.Build) -> None:
    text = sample.result.files["rendered/terraform/prod/tenant-acme/main.tf"].decode()
    open_alb = text.replace("prefix_list_id    = data.aws_ec2_managed_prefix_list.cloudfront.id", 'cidr_ipv4 = "0.0.0.0/0"')
    assert open_alb != text
    assert alb_findings(parse(open_alb))
    literal = text.replace('"x-origin-verify" = random_password.origin_secret.result', '"x-origin-verify" = "hunter2"')
    assert literal != text
    assert origin_header_findings(parse(literal))


# --- policy: catalogs that would break isolation ----------------------------------------------------


def test_regulated_tenant_in_a_pool_is_refused_at_its_tier_line(companyos: Any, repo: Path) -> None:
    path = repo / "tenants/globex.yaml"
    text = path.read_text()
    tier = re.search(r"^tier: (\S+)$", text, re.M)
    assert tier is not None
    tiers = repo / "catalog/tiers" / f"{tier.group(1)}.yaml"
    tiers.write_text(tiers.read_text().replace("isolation: pooled", "isolation: pooled\nregulated: true"))
    errors = validate_errors(companyos, repo)  # exit 2, nothing written
    found = by_rule(errors, "CO016")
    assert ("tenants/globex.yaml", line_of(path, "tier:")) in [at(e) for e in found]
    assert all("share the pool" in e["message"] for e in found)
