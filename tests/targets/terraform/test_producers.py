"""Producers for what the rendered outputs consume (issue 12, item 2): every Secrets Manager
key an ExternalSecret reads is created by exactly one Terraform resource in the tenant's root,
encrypted with the tenant's key and holding no secret value; every public and origin host
has a DNS record and a validated certificate; read replicas and the cache endpoint become
real resources. Checked on the parsed output of the real render, and on scratch catalogs
with the features planted; a removed producer is caught."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from hcl2 import SerializationOptions

from generator import pipeline, vendor
from generator.errors import CatalogErrors
from generator.model import naming
from generator.ops import cost
from helpers.catalog_edit import edit_yaml
from helpers.repo import copy_repo

OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)
VALIDATE_TF = vendor.terraform_data_dir().parent / "tools/validate_tf.py"
ROOT = re.compile(r"^rendered/terraform/(?P<env>[^/]+)/(?P<root>[^/]+)/(?P<file>[^/]+\.tf)$")
#: A service's values (``standby/`` holds the DR overlay per tenant; "standby" is a reserved tenant name).
VALUES = re.compile(r"^rendered/helm/(?P<env>[^/]+)/(?!standby/)(?P<tenant>[^/]+)/[^/]+\.yaml$")
JOBS = re.compile(r"^rendered/migrations/(?P<env>[^/]+)/(?P<tenant>[^/]+)/[^/]+\.yaml$")
#: What a Terraform-written secret may hold: connection coordinates, never a credential.
SECRET_FIELDS = {"engine", "host", "port", "dbname", "username", "reader_hosts", "sslmode", "tls"}


# --- reading the render -------------------------------------------------------------------------


def terraform(files: dict[str, bytes]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(env, root, file) -> parsed HCL of every rendered .tf."""
    out = {}
    for path, data in files.items():
        m = ROOT.match(path)
        if m:
            out[(m["env"], m["root"], m["file"])] = hcl2.loads(data.decode(), serialization_options=OPTIONS)
    return out


def resources(doc: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """name -> body of every ``resource "<kind>" "<name>"`` in a parsed file."""
    return {
        name: body for item in doc.get("resource", []) for rtype, named in item.items() if rtype == kind for name, body in named.items()
    }


def consumed_keys(files: dict[str, bytes]) -> set[tuple[str, str, str]]:
    """(env, tenant, Secrets Manager key) of every ExternalSecret: the Helm values' files and
    the migration Jobs' own ExternalSecrets."""
    keys: set[tuple[str, str, str]] = set()
    for path, data in files.items():
        if m := VALUES.match(path):
            values = yaml.safe_load(data)
            for spec in (values.get("externalSecret") or {}).get("files", {}).values():
                keys |= {(m["env"], m["tenant"], ref["remoteRef"]["key"]) for ref in spec.get("data", {}).values()}
                if "dataFrom" in spec:
                    keys.add((m["env"], m["tenant"], spec["dataFrom"]["key"]))
        elif m := JOBS.match(path):
            for doc in yaml.safe_load_all(data):
                if doc and doc["kind"] == "ExternalSecret":
                    keys |= {(m["env"], m["tenant"], item["extract"]["key"]) for item in doc["spec"].get("dataFrom", [])}
                    keys |= {(m["env"], m["tenant"], item["remoteRef"]["key"]) for item in doc["spec"].get("data", [])}
    return keys


def broken_secret_contracts(files: dict[str, bytes]) -> list[str]:
    """One message per ExternalSecret key without exactly one producer encrypted with the
    tenant's key in the tenant's own root (an empty list: every consumer is served)."""
    tf = terraform(files)
    produced: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for (env, root, _file), doc in tf.items():
        for body in resources(doc, "aws_secretsmanager_secret").values():
            produced.setdefault((env, root, body["name"]), []).append(body)
    problems = []
    for env, tenant, key in sorted(consumed_keys(files)):
        found = produced.get((env, naming.tenant_root(tenant), key), [])
        if len(found) != 1:
            problems.append(f"{env}/{tenant}: ExternalSecret key {key} has {len(found)} producers")
        elif found[0].get("kms_key_id") != "${module.kms.key_arn}":
            problems.append(f"{env}/{tenant}: secret {key} is not encrypted with the tenant key: {found[0].get('kms_key_id')}")
    return problems


def build(repo: Path) -> dict[str, bytes]:
    return pipeline.build(repo).result.files


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """A scratch catalog with every optional producer in use: a rotated secret, a service
    using the cache, read replicas on a dedicated tenant and on the standard pool."""
    repo = copy_repo(tmp_path_factory.mktemp("producers") / "repo")

    def api(data: Any) -> None:
        data["secrets"][0]["rotation"] = {"lambda_name": "stripe-key-rotation", "days": 14}

    edit_yaml(repo / "catalog/services/api.yaml", api)
    edit_yaml(repo / "catalog/services/worker.yaml", lambda data: data.__setitem__("uses_cache", True))
    edit_yaml(repo / "tenants/acme.yaml", lambda data: data["settings"]["database"].__setitem__("read_replicas", 2))
    edit_yaml(repo / "catalog/tiers/standard.yaml", lambda data: data["settings"]["database"].__setitem__("read_replicas", 1))
    return repo, build(repo)


# --- secrets ------------------------------------------------------------------------------------


def test_every_external_secret_key_has_exactly_one_producer_with_the_tenant_key(sample: pipeline.Build) -> None:
    keys = consumed_keys(sample.result.files)
    # the sample's consumers: stripe and database keys from Helm, the migration Job's database key
    assert ("prod", "acme", "companyos/prod/acme/api/stripe") in keys
    assert ("dev", "globex", "companyos/dev/globex/api/database") in keys
    assert broken_secret_contracts(sample.result.files) == []


def test_planted_features_keep_every_secret_contract(planted: tuple[Path, dict[str, bytes]]) -> None:
    _repo, files = planted
    keys = consumed_keys(files)
    assert ("prod", "hooli", "companyos/prod/hooli/cache") in keys  # worker uses_cache (pooled tenant)
    assert ("prod", "acme", "companyos/prod/acme/cache") in keys  # dedicated tenant
    assert broken_secret_contracts(files) == []


def test_removing_a_producer_is_caught(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    macros = repo / "templates/terraform/_producers.tf.j2"
    text = macros.read_text()
    # drop the database secrets only: app (stripe) secrets stay produced
    text = text.replace("{% for sec in r.secrets %}", '{% for sec in r.secrets if sec.kind != "database" %}', 1)
    macros.write_text(text)
    # The contract check refuses the render, one error per consumer of a missing database secret.
    with pytest.raises(CatalogErrors) as raised:
        build(repo)
    problems = [str(e) for e in raised.value.errors]
    assert problems and all("/database' in " in p and "no rendered file provides it" in p for p in problems)
    assert any("rendered/helm/prod/acme/api.yaml consumes secret 'companyos/prod/acme/api/database'" in p for p in problems)


def test_a_producer_with_another_key_is_caught(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    macros = repo / "templates/terraform/_producers.tf.j2"
    macros.write_text(
        macros.read_text().replace("kms_key_id = module.kms.key_arn\n  recovery", 'kms_key_id = "alias/aws/secretsmanager"\n  recovery', 1)
    )
    problems = broken_secret_contracts(build(repo))
    assert problems and all("not encrypted with the tenant key" in p for p in problems)


def test_no_secret_values_anywhere(planted: tuple[Path, dict[str, bytes]], sample: pipeline.Build) -> None:
    """A Terraform-written secret holds coordinates from Terraform outputs, never a
    credential; app secrets have no version at all (their value is set out of band)."""
    for files in (sample.result.files, planted[1]):
        versions = 0
        for (env, root, _f), doc in terraform(files).items():
            for name, body in resources(doc, "aws_secretsmanager_secret_version").items():
                versions += 1
                if name == "argocd_standby":
                    # the standby cluster's Argo CD registration (issue 15): its coordinates, all
                    # module outputs; the CA bundle is public, and Argo CD signs in with IRSA
                    fields = dict(re.findall(r"(\w+)\s*=\s*(\S+)", body["secret_string"]))
                    assert set(fields) == {"cluster", "server", "ca"}, fields
                    assert all(v.startswith("module.eks_standby.") for v in fields.values()), fields
                    continue
                # the pool's coordinates for its bootstrap Jobs: host and port only (the password is RDS's)
                assert name.startswith(("db_", "cache")) or name == "pool_admin_endpoint", (env, root, name)
                assert "secret_binary" not in body and "secret_string_wo" not in body
                fields = dict(re.findall(r"[{,]\s*(\w+)\s*=\s*([^,}]+)", body["secret_string"]))
                assert fields and set(fields) <= SECRET_FIELDS, (env, root, name, fields)
                assert re.match(r"^(module|data)\.", fields["host"]), fields  # from outputs, never a literal
            for body in resources(doc, "aws_db_instance").values():
                assert "password" not in body and "password_wo" not in body
        assert versions
        texts = [data.decode() for path, data in files.items() if path.startswith("rendered/")]
        # the only secret_string lines are the reviewed jsonencode documents above
        assert sum(t.count("secret_string") for t in texts) == versions
        assert not any(re.search(r"(?i)(password|api_key)\s*=\s*\"", t) for t in texts)


def test_declared_rotation_is_rendered(planted: tuple[Path, dict[str, bytes]], sample: pipeline.Build) -> None:
    _repo, files = planted
    tf = terraform(files)
    main = tf[("prod", "tenant-acme", "main.tf")]
    rotation = resources(main, "aws_secretsmanager_secret_rotation")
    assert set(rotation) == {"api_stripe_api_key"}
    assert rotation["api_stripe_api_key"]["secret_id"] == "${aws_secretsmanager_secret.api_stripe_api_key.id}"
    assert rotation["api_stripe_api_key"]["rotation_lambda_arn"] == "arn:aws:lambda:eu-west-1:410000000101:function:stripe-key-rotation"
    assert rotation["api_stripe_api_key"]["rotation_rules"][0]["automatically_after_days"] == 14
    # the pooled tenant's rotation points at the pool account the secret lives in
    pooled = resources(tf[("prod", "tenant-globex", "main.tf")], "aws_secretsmanager_secret_rotation")
    account = re.search(r"allowed_account_ids\s*=\s*\[\"(\d+)\"", files["rendered/terraform/prod/tenant-globex/providers.tf"].decode())
    assert account and f":{account[1]}:function:stripe-key-rotation" in pooled["api_stripe_api_key"]["rotation_lambda_arn"]
    # the sample declares no rotation, and renders none
    assert not any(b"aws_secretsmanager_secret_rotation" in data for data in sample.result.files.values())


# --- DNS and certificates -----------------------------------------------------------------------


def test_every_public_and_origin_host_has_a_record_and_a_validated_certificate(sample: pipeline.Build) -> None:
    files = sample.result.files
    tf = terraform(files)
    checked = 0
    for path, data in files.items():
        m = VALUES.match(path)
        if not m:
            continue
        ingress = yaml.safe_load(data)["ingress"]
        if not ingress["enabled"]:
            continue
        env, tenant = m["env"], m["tenant"]
        main = tf[(env, naming.tenant_root(tenant), "main.tf")]
        hosts = [h["host"] for h in ingress["hosts"]]
        origin = ingress["annotations"]["external-dns.alpha.kubernetes.io/hostname"]
        assert origin == naming.ingress_origin_hostname(tenant, next(e for e in sample.model.environments if e.name == env))
        assert ingress["annotations"]["external-dns.alpha.kubernetes.io/ingress-hostname-source"] == "annotation-only"
        assert origin in ingress["tls"][0]["hosts"]  # the ALB controller picks the certificate by TLS host
        # public hosts: alias records to CloudFront and the edge certificate, validated
        records = resources(main, "aws_route53_record")
        certs = resources(main, "aws_acm_certificate")
        validations = resources(main, "aws_acm_certificate_validation")
        for host in hosts:
            assert host in records["edge"]["for_each"], (path, host)
            assert host in [certs["edge"]["domain_name"], *certs["edge"]["subject_alternative_names"]]
        assert certs["edge"]["provider"] == "${aws.edge}" and certs["edge"]["validation_method"] == "DNS"
        # the origin: external-dns owns the record; the ALB's certificate lives in the
        # shared account (where the ALB is), in the environment's region
        assert certs["origin"]["domain_name"] == origin and certs["origin"]["provider"] == "${aws.shared}"
        assert set(hosts) <= set(certs["origin"]["subject_alternative_names"])
        for name in ("edge", "origin"):
            assert validations[name]["certificate_arn"] == f"${{aws_acm_certificate.{name}.arn}}"
            assert f"aws_route53_record.{name}_validation" in validations[name]["validation_record_fqdns"]
            assert records[f"{name}_validation"]["zone_id"] == "${data.terraform_remote_state.shared.outputs.zone_id}"
        cdn = next(body for item in main["module"] for key, body in item.items() if key == "cdn")
        assert cdn["origin"]["ingress"]["domain_name"] == origin
        checked += 1
    assert checked >= 10


# --- cache and read replicas --------------------------------------------------------------------


def test_read_replicas_are_real_instances_and_still_priced(planted: tuple[Path, dict[str, bytes]], sample: pipeline.Build) -> None:
    repo, files = planted
    tf = terraform(files)
    acme = resources(tf[("prod", "tenant-acme", "main.tf")], "aws_db_instance")["replica"]
    assert acme["for_each"] == '${toset(["companyos-prod-acme-replica-1", "companyos-prod-acme-replica-2"])}'
    assert acme["replicate_source_db"] == "${module.db.db_instance_identifier}"
    assert acme["kms_key_id"] == "${module.kms.key_arn}" and acme["storage_encrypted"] is True
    pool = resources(tf[("prod", "pool-standard", "main.tf")], "aws_db_instance")["replica"]
    assert "companyos-prod-pool-standard-replica-1" in pool["for_each"]
    outputs = {k: v for item in tf[("prod", "pool-standard", "outputs.tf")]["output"] for k, v in item.items()}
    assert "aws_db_instance.replica" in outputs["db_replica_addresses"]["value"]
    # the readers reach the services through the database secret
    dedicated = resources(tf[("prod", "tenant-acme", "main.tf")], "aws_secretsmanager_secret_version")["db_api"]
    assert "aws_db_instance.replica" in dedicated["secret_string"]
    pooled = resources(tf[("prod", "tenant-globex", "main.tf")], "aws_secretsmanager_secret_version")["db_api"]
    assert "data.terraform_remote_state.pool.outputs.db_replica_addresses" in pooled["secret_string"]
    # the sample has none, and no replica resource appears there
    # (the prod DR copies in dr.tf are aws_db_instance.dr_replica, another resource)
    assert not any(b'resource "aws_db_instance" "replica"' in data for data in sample.result.files.values())
    # the cost estimate still prices them (ops/cost.py)
    model = pipeline.build(repo).model
    pricing, _at = cost.pricing_of(model)
    with_replicas = {(e.tenant, e.environment): e.parts for e in cost.estimate(model, pricing)}
    base = {(e.tenant, e.environment): e.parts for e in cost.estimate(sample.model, pricing)}
    assert with_replicas[("acme", "prod")]["database"] > base[("acme", "prod")]["database"]


def test_cache_endpoint_reaches_the_service(planted: tuple[Path, dict[str, bytes]]) -> None:
    _repo, files = planted
    tf = terraform(files)
    values = yaml.safe_load(files["rendered/helm/prod/hooli/worker.yaml"])
    assert values["externalSecret"]["files"]["cache"] == {"dataFrom": {"key": "companyos/prod/hooli/cache"}}
    pooled = resources(tf[("prod", "tenant-hooli", "main.tf")], "aws_secretsmanager_secret_version")["cache"]
    assert "data.terraform_remote_state.pool.outputs.cache_configuration_endpoint" in pooled["secret_string"]
    dedicated = resources(tf[("prod", "tenant-acme", "main.tf")], "aws_secretsmanager_secret_version")["cache"]
    assert "module.cache.replication_group_configuration_endpoint_address" in dedicated["secret_string"]
    # and the network policy lets the worker (only) reach Redis
    policies = {
        doc["metadata"]["name"]: doc
        for path, data in files.items()
        if path.startswith("rendered/argocd/prod/") and "hooli" in path
        for doc in yaml.safe_load_all(data)
        if isinstance(doc, dict) and doc.get("kind") == "NetworkPolicy"
    }
    ports = lambda name: {p["port"] for rule in policies[name]["spec"]["egress"] for p in rule.get("ports", [])}  # noqa: E731
    assert 6379 in ports("allow-worker") and 6379 not in ports("allow-api")


# --- the rendered tree passes the vendored checks ------------------------------------------------


@pytest.mark.parametrize("which", ["sample", "planted"])
def test_rendered_terraform_parses_and_validates(
    which: str, sample: pipeline.Build, planted: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    files = sample.result.files if which == "sample" else planted[1]
    written = 0
    for path, data in files.items():
        if ROOT.match(path):
            hcl2.loads(data.decode())  # every file parses
            target = tmp_path / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written += 1
    assert written
    result = subprocess.run([sys.executable, str(VALIDATE_TF), "-q", str(tmp_path / "rendered/terraform")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
