"""Cross-account secret reads with least privilege and tenant isolation (issues 12 and 13).

Every ExternalSecret reads through its own namespace's SecretStore; that store assumes the
tenant's secret-reader role in the account where Terraform creates the tenant's secrets; the
reader trusts only the External Secrets Operator's role of the same environment (with the
ExternalId and the ``esoNamespace`` session tag of that namespace) and reads only the
tenant's prefix; the operator's role may assume exactly those readers. Checked on the parsed
render (YAML, python-hcl2, the strict CRD schema) and by planting faults the contract check
must catch.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import hcl2
import jsonschema
import pytest
from hcl2.utils import SerializationOptions

from generator import pipeline, vendor
from generator.errors import CatalogErrors
from generator.model import addons as model_addons
from generator.model import naming
from generator.model.resolve import Deployment
from generator.targets.argocd import namespaces
from helpers.yaml_docs import load_yaml_docs

OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)
VALIDATE_TF = vendor.tools_dir() / "validate_tf.py"
STORE_SCHEMA = vendor.crd_schema_dir() / "external-secrets.io_v1_SecretStore.json"


def _yaml(sample: pipeline.Build, path: str) -> list[dict[str, Any]]:
    return [d for d in load_yaml_docs(sample.result.files[path]) if d]


def _hcl(sample: pipeline.Build, path: str) -> dict[str, Any]:
    return hcl2.loads(sample.result.files[path].decode(), serialization_options=OPTIONS)


def _named(doc: dict[str, Any], block: str, kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for item in doc.get(block, []) for rtype, named in item.items() if rtype == kind for name, body in named.items()}


def _deployments(sample: pipeline.Build) -> list[Deployment]:
    return list(sample.model.deployments)


def _store(sample: pipeline.Build, d: Deployment) -> dict[str, Any]:
    docs = [x for x in _yaml(sample, f"rendered/argocd/{d.env}/namespaces/{d.name}.yaml") if x["kind"] == "SecretStore"]
    assert len(docs) == 1, f"{d.env}/{d.name}: one SecretStore per tenant namespace"
    return docs[0]


def _eso_role(sample: pipeline.Build, d: Deployment) -> str:
    return model_addons.role_arn(d.environment.accounts.shared_services, sample.model.platform, d.env, "external-secrets")


def _account(sample: pipeline.Build, d: Deployment) -> str:
    """The account the tenant root applies in, as its rendered provider pins it."""
    text = sample.result.files[f"rendered/terraform/{d.env}/tenant-{d.name}/providers.tf"].decode()
    found = re.search(r'allowed_account_ids\s*=\s*\["(\d+)"\]', text)
    assert found, text
    return found[1]


def _reader(sample: pipeline.Build, d: Deployment) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(role, role policy, trust document, permissions document) of the tenant root."""
    doc = _hcl(sample, f"rendered/terraform/{d.env}/tenant-{d.name}/main.tf")
    docs = _named(doc, "data", "aws_iam_policy_document")
    role = _named(doc, "resource", "aws_iam_role")["secret_reader"]
    policy = _named(doc, "resource", "aws_iam_role_policy")["secret_reader"]
    return role, policy, docs["secret_reader_trust"], docs["secret_reader"]


def _conditions(statement: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    return {c["variable"]: (c["test"], c["values"]) for c in statement.get("condition", [])}


# --- the stores ---------------------------------------------------------------------------------


def test_every_external_secret_reads_through_its_namespaces_secret_store(sample: pipeline.Build) -> None:
    checked = 0
    for d in _deployments(sample):
        store = _store(sample, d)
        for service in d.services:
            values = _yaml(sample, f"rendered/helm/{d.env}/{d.name}/{service.name}.yaml")[0]
            if values["externalSecret"]["enabled"]:
                ref = values["externalSecret"]["secretStore"]
                assert ref == {"name": store["metadata"]["name"], "kind": "SecretStore"}, (d.env, d.name, service.name)
                checked += 1
            job = f"rendered/migrations/{d.env}/{d.name}/{service.name}.yaml"
            for doc in _yaml(sample, job) if job in sample.result.files else []:
                if doc["kind"] == "ExternalSecret":
                    assert doc["metadata"]["namespace"] == store["metadata"]["namespace"] == d.namespace
                    assert doc["spec"]["secretStoreRef"] == {"name": store["metadata"]["name"], "kind": "SecretStore"}
                    checked += 1
    assert checked > 0
    # No cluster-wide store is rendered any more: none could be read across tenants.
    for path in sample.result.files:
        if path.endswith(".yaml") and path.startswith("rendered/argocd/"):
            assert not any(doc.get("kind") == "ClusterSecretStore" for doc in _yaml(sample, path)), path


def test_each_store_assumes_the_reader_in_the_account_holding_the_secrets(sample: pipeline.Build) -> None:
    validator = jsonschema.Draft7Validator(json.loads(STORE_SCHEMA.read_text()))
    for d in _deployments(sample):
        store = _store(sample, d)
        assert list(validator.iter_errors(store)) == [], (d.env, d.name)
        aws = store["spec"]["provider"]["aws"]
        account = _account(sample, d)
        # The secrets this root creates are exactly the account the store's role is in.
        tf = _hcl(sample, f"rendered/terraform/{d.env}/tenant-{d.name}/main.tf")
        assert _named(tf, "resource", "aws_secretsmanager_secret"), (d.env, d.name)
        assert aws["role"] == f"arn:aws:iam::{account}:role/{naming.secret_reader_role_name(sample.model.platform, d.env, d.name)}"
        assert aws["region"] == d.environment.aws.region and aws["service"] == "SecretsManager"
        # The operator's own identity (no auth: a namespaced store may not name its service account).
        assert "auth" not in aws
        assert aws["externalID"] == naming.secret_reader_external_id(sample.model.platform, d.env, d.name)
        assert aws["sessionTagsPolicy"] == "Simple"
        assert store["metadata"]["namespace"] == d.namespace


def test_a_planted_bad_store_field_fails_the_strict_schema(sample: pipeline.Build) -> None:
    d = _deployments(sample)[0]
    store = _store(sample, d)
    store["spec"]["provider"]["aws"]["roleArn"] = store["spec"]["provider"]["aws"].pop("role")
    assert list(jsonschema.Draft7Validator(json.loads(STORE_SCHEMA.read_text())).iter_errors(store))


def test_tenants_may_not_create_stores_themselves(sample: pipeline.Build) -> None:
    """Only the platform project applies SecretStores; a tenant project whitelists none."""
    for d in _deployments(sample):
        project = _yaml(sample, f"rendered/argocd/{d.env}/projects/{d.name}.yaml")[0]
        kinds = {(e["group"], e["kind"]) for e in project["spec"]["namespaceResourceWhitelist"]}
        assert not {k for g, k in kinds if g in ("external-secrets.io", "*") and k in ("SecretStore", "ClusterSecretStore", "*")}


# --- the reader roles ---------------------------------------------------------------------------


def test_each_reader_trusts_only_its_environments_operator_and_reads_only_its_prefix(sample: pipeline.Build) -> None:
    platform = sample.model.platform
    for d in _deployments(sample):
        role, policy, trust, perms = _reader(sample, d)
        eso = _eso_role(sample, d)
        assert role["name"] == naming.secret_reader_role_name(platform, d.env, d.name)
        assert role["assume_role_policy"] == "${data.aws_iam_policy_document.secret_reader_trust.json}"
        assert policy["policy"] == "${data.aws_iam_policy_document.secret_reader.json}"
        assert policy["role"] == "${aws_iam_role.secret_reader.id}"
        statements = trust["statement"]
        assert {tuple(s["actions"]) for s in statements} == {("sts:AssumeRole",), ("sts:TagSession",)}
        for s in statements:
            assert [{k: v for k, v in p.items() if not k.startswith("__")} for p in s["principals"]] == [
                {"type": "AWS", "identifiers": [eso]}
            ], (d.env, d.name)
            assert _conditions(s)["aws:RequestTag/esoNamespace"] == ("StringEquals", [d.namespace])
        assume = next(s for s in statements if s["actions"] == ["sts:AssumeRole"])
        assert _conditions(assume)["sts:ExternalId"] == ("StringEquals", [naming.secret_reader_external_id(platform, d.env, d.name)])
        # Permissions: the tenant's prefix in this account and region, its key via Secrets Manager only.
        account, region = _account(sample, d), d.environment.aws.region
        prefix = naming.secret_prefix(platform, d.env, d.name)
        assert prefix == f"{platform.organization}/{d.env}/{d.name}/"
        by_sid = {s["sid"]: s for s in perms["statement"]}
        standby = d.environment.disaster_recovery is not None  # issue 15: replicas readable in the DR region
        assert set(by_sid) == {"ReadTenantSecrets", "DecryptTenantSecrets", *(["DecryptTenantSecretReplicas"] if standby else [])}
        assert sorted(by_sid["ReadTenantSecrets"]["actions"]) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
        readable_region = "*" if standby else region
        assert by_sid["ReadTenantSecrets"]["resources"] == [f"arn:aws:secretsmanager:{readable_region}:{account}:secret:{prefix}*"]
        if standby:
            replicas = by_sid["DecryptTenantSecretReplicas"]
            assert replicas["resources"] == ["${aws_kms_replica_key.dr.arn}"]
            assert _conditions(replicas) == {
                "kms:ViaService": ("StringEquals", [f"secretsmanager.{d.environment.aws.dr_region}.amazonaws.com"])
            }
        assert by_sid["DecryptTenantSecrets"]["actions"] == ["kms:Decrypt"]
        assert by_sid["DecryptTenantSecrets"]["resources"] == ["${module.kms.key_arn}"]
        assert _conditions(by_sid["DecryptTenantSecrets"]) == {
            "kms:ViaService": ("StringEquals", [f"secretsmanager.{region}.amazonaws.com"])
        }


def test_no_reader_covers_another_tenants_secret(sample: pipeline.Build) -> None:
    """Pooled tenants share an account: one reader each, and none matches a neighbour's secret."""
    grants: dict[tuple[str, str], list[str]] = {}
    secrets: dict[tuple[str, str], list[str]] = {}
    for d in _deployments(sample):
        _, _, _, perms = _reader(sample, d)
        grants[(d.env, d.name)] = [r for s in perms["statement"] if s["sid"] == "ReadTenantSecrets" for r in s["resources"]]
        tf = _hcl(sample, f"rendered/terraform/{d.env}/tenant-{d.name}/main.tf")
        account, region = _account(sample, d), d.environment.aws.region
        names = [body["name"] for body in _named(tf, "resource", "aws_secretsmanager_secret").values()]
        secrets[(d.env, d.name)] = [f"arn:aws:secretsmanager:{region}:{account}:secret:{n}-AbCdEf" for n in names]
    pooled_accounts = [d.account_id for d in _deployments(sample) if not d.dedicated]
    assert len(pooled_accounts) > len(set(pooled_accounts)), "the sample must have tenants sharing a pool account"
    for owner, arns in secrets.items():
        for reader, patterns in grants.items():
            readable = [a for a in arns if any(fnmatchcase(a, p) for p in patterns)]
            assert readable == (arns if reader == owner else []), (reader, owner, readable)


def test_the_operator_may_assume_exactly_its_environments_readers(sample: pipeline.Build) -> None:
    for env in ("dev", "stage", "prod"):
        doc = _hcl(sample, f"rendered/terraform/{env}/shared/addons.tf")
        modules = {name: body for block in doc["module"] for name, body in block.items()}
        permissions = modules["irsa_addon_external_secrets"]["inline_policy_permissions"]
        assume = [s for s in permissions.values() if "sts:AssumeRole" in s["actions"]]
        readers = sorted(_store(sample, d)["spec"]["provider"]["aws"]["role"] for d in sample.model.in_environment(env))
        # the resources are a for expression over the shared root's tenants/<name>.json (one file
        # per tenant; tests/targets/terraform/test_tenant_records.py has Terraform evaluate it)
        [expression] = [s["resources"] for s in assume]
        assert "values(local.tenant_records) : t.secret_reader.role if t.secret_reader.principal ==" in expression
        records = [json.loads(data) for p, data in sample.result.files.items() if p.startswith(f"rendered/terraform/{env}/shared/tenants/")]
        assert sorted(r["secret_reader"]["role"] for r in records if r["secret_reader"]["role"]) == readers
        assert all(re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", r) for r in readers)


def test_rendered_terraform_with_readers_passes_the_offline_validator(sample: pipeline.Build, tmp_path: Path) -> None:
    for path, data in sample.result.files.items():
        if path.startswith("rendered/terraform/") and ("/tenant-" in path or path.endswith("/shared/addons.tf")):
            dest = tmp_path / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
    done = subprocess.run([sys.executable, str(VALIDATE_TF), "-q", str(tmp_path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# --- planted faults: the contract check catches them ----------------------------------------------


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def _errors(repo: Path) -> list[str]:
    with pytest.raises(CatalogErrors) as raised:
        pipeline.build(repo, jobs=1)
    return [str(e) for e in raised.value.errors]


def test_a_reader_policy_widened_to_the_environment_is_caught(repo: Path) -> None:
    _edit(
        repo / "templates/terraform/_producers.tf.j2",
        "resources = {{ [rd.secret_arns] | hcl }}",
        "resources = {{ [rd.secret_arns.replace(rd.prefix, rd.prefix.split('/')[0] ~ '/' ~ env.name ~ '/')] | hcl }}",
    )
    messages = _errors(repo)
    widened = [m for m in messages if "consumes iam_role 'arn:aws:iam::" in m and "secret-reader" in m]
    assert widened, messages
    assert any(":secret:companyos/dev/*" in m and "reads arn:aws:secretsmanager:" in m for m in widened)
    assert all(m.split(":", 1)[0].startswith("tenants/") for m in widened)


def test_a_store_pointing_at_another_tenants_reader_is_caught(monkeypatch: pytest.MonkeyPatch, repo: Path) -> None:
    original = namespaces.secret_store

    def neighbours(reader: Any, metadata: dict[str, Any]) -> dict[str, Any]:
        """globex's store in dev names hooli's reader: same pool account, another tenant."""
        doc = original(reader, metadata)
        if metadata["namespace"] == "tenant-globex" and "-dev-" in reader.role_name:
            aws = doc["spec"]["provider"]["aws"]
            aws["role"] = aws["role"].replace("-globex-secret-reader", "-hooli-secret-reader")
        return doc

    monkeypatch.setattr(namespaces, "secret_store", neighbours)
    messages = _errors(repo)
    trust = [m for m in messages if "consumes iam_role" in m and "-dev-hooli-secret-reader" in m and "for tenant-globex" in m]
    assert trust, messages
    assert any("trusts arn:aws:iam::" in m and "for tenant-hooli" in m for m in trust)  # what the producer gives
    assert all(m.startswith("tenants/globex.yaml:") for m in trust)
    # The ExternalSecrets of globex notice their store assumes another role too.
    assert any("consumes secret_store 'tenant-globex/" in m for m in messages)


def test_a_secret_outside_the_tenants_prefix_is_caught(repo: Path) -> None:
    """A key the reader cannot read (no SecretStore could fill it) fails at its catalog line."""
    _edit(repo / "catalog/services/api.yaml", '"companyos/{env}/{tenant}/api/stripe"', '"shared/{env}/{tenant}/api/stripe"')
    messages = _errors(repo)
    outside = [m for m in messages if "consumes secret 'shared/" in m]
    assert outside and all("read by no reader role" in m for m in outside), messages
    assert all(m.startswith("catalog/services/api.yaml:") for m in outside)


def test_an_operator_role_missing_a_reader_is_caught(repo: Path) -> None:
    _edit(
        repo / "catalog/addons/external-secrets.yaml",
        'resources: ["arn:aws:iam::*:role/{org}-{env}-*-secret-reader"]',
        'resources: ["arn:aws:iam::*:role/{org}-{env}-a*-secret-reader"]',
    )
    messages = _errors(repo)
    assert any("-umbrella-secret-reader" in m and "assumable by arn:aws:iam::" in m for m in messages), messages
