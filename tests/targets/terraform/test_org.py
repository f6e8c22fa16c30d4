"""The organization root (rendered/terraform/org): it parses and passes the vendored provider
check, has one account per dedicated tenant and environment (adopted by import when the
catalog names its id), never destroys an account, keeps its SCPs within AWS's quotas, and
refuses bad organization input at the catalog line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

from generator import pipeline, vendor
from generator.errors import CatalogErrors, Location
from generator.formats.templating import Templates
from generator.targets.terraform import org
from helpers.catalog_edit import edit_yaml

ORG = "rendered/terraform/org"
VALIDATE_TF = Path(vendor.__file__).parent / "tools" / "validate_tf.py"


@pytest.fixture(scope="module")
def docs(sample: pipeline.Build) -> dict[str, dict[str, Any]]:
    options = SerializationOptions(strip_string_quotes=True, with_comments=False)
    files = {p: d.decode() for p, d in sample.result.files.items() if p.startswith(f"{ORG}/")}
    return {Path(p).name: hcl2.loads(text, serialization_options=options) for p, text in files.items()}


def resources(doc: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {name: body for block in doc.get("resource", []) for t, named in block.items() if t == rtype for name, body in named.items()}


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_org_root_files_parse_and_pass_the_provider_schema_check(sample, tmp_path):
    files = {p: d for p, d in sample.result.files.items() if p.startswith(f"{ORG}/")}
    own = {"main.tf", "policies.tf", "outputs.tf", "identity.tf", "audit.tf", "config.tf"}
    tenants = {f"tenant-{d.name}.tf" for d in sample.model.deployments if d.dedicated}  # one file per tenant
    tenants |= {f"identity-{d.name}.tf" for d in sample.model.deployments}  # every team's permission sets
    assert {Path(p).name for p in files} == {"versions.tf", "backend.tf", "providers.tf", *own, *tenants}
    for path, data in files.items():
        (tmp_path / Path(path).name).write_bytes(data)
    run = subprocess.run([sys.executable, str(VALIDATE_TF), str(tmp_path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 findings" in run.stderr and "aws resources" in run.stderr


def test_providers_assume_the_management_account_and_state_has_its_own_key(sample, docs):
    provider = docs["providers.tf"]["provider"][0]["aws"]
    management = sample.model.platform.management_account
    assert provider["allowed_account_ids"] == [management]
    assert f"::{management}:role/" in provider["assume_role"][0]["role_arn"]
    assert docs["backend.tf"]["terraform"][0]["backend"][0]["s3"]["key"] == "org/terraform.tfstate"


def all_of(docs: dict[str, dict[str, Any]], rtype: str) -> dict[str, dict[str, Any]]:
    """Resources of ``rtype`` across the org root's files (platform in main.tf, tenants in theirs)."""
    return {name: body for doc in docs.values() for name, body in resources(doc, rtype).items()}


def test_one_account_per_dedicated_tenant_and_environment(sample, docs):
    accounts = all_of(docs, "aws_organizations_account")
    tenant_accounts = {
        (b["tags"]["tenant"], b["tags"]["environment"])
        for b in accounts.values()
        if not b["tags"]["tenant"].startswith(("pool-", "shared-", "dr-", "log-", "audit"))
    }
    expected = {(d.name, d.env) for d in sample.model.deployments if d.dedicated}
    assert tenant_accounts == expected and expected  # acme and umbrella, no pooled tenant
    for body in accounts.values():
        assert body["close_on_deletion"] is False
        assert body["lifecycle"][0]["prevent_destroy"] is True
        assert set(body["tags"]) >= {"tenant", "environment", "owner", "cost-center"}
    emails = [b["email"] for b in accounts.values()]
    assert len(set(emails)) == len(emails)
    acme = sample.model.catalog.tenants["acme"].spec
    prod = accounts["acme__prod"]
    assert prod["email"] == "aws+companyos-acme-prod@example.com" and prod["tags"]["owner"] == acme.owner
    assert prod["parent_id"] == "${aws_organizations_organizational_unit.env__prod__regulated.id}"


def test_existing_accounts_are_imported_never_created_twice(sample, docs):
    imports = {
        blk["to"]: blk["id"]
        for doc in docs.values()
        for blk in doc.get("import", [])
        if blk["to"].startswith("${aws_organizations_account.")  # audit.tf adopts the organization too
    }
    accounts = all_of(docs, "aws_organizations_account")
    for d in sample.model.deployments:
        if d.dedicated:
            assert imports[f"${{aws_organizations_account.{d.name}__{d.env}}}"] == d.tenant.accounts[d.env]
    ids = list(imports.values())
    assert len(ids) == len(set(ids)) == len(accounts)  # every sample account has an id: all adopted, once
    assert imports["${aws_organizations_account.log_archive}"] == sample.model.platform.aws_organization.log_archive_account


def test_outputs_map_account_ids_by_tenant_and_environment(docs):
    value = docs["outputs.tf"]["output"][0]["account_ids"]["value"]
    assert "acme/prod" not in value, "a tenant's ids are in its own file"
    assert docs["tenant-acme.tf"]["output"][0]["tenant_acme_account_ids"]["value"]["prod"] == "${aws_organizations_account.acme__prod.id}"
    assert value["shared-services/dev"] == "${aws_organizations_account.shared_services__dev.id}"


def test_scps_are_within_quotas_and_attached_to_the_right_ous(sample):
    model = sample.model
    layout, errors = org.orgmodel.layout(model)
    assert layout is not None and not errors
    policies = org.guardrails(model, layout)
    assert not org.check_limits(policies)
    scps = {p.key: p for p in policies if p.type == org.SCP}
    assert all(len(p.minified) <= org.SCP_MAX_CHARS for p in scps.values())
    assert scps["deny_leave_organization"].targets == ("root",)
    region = scps["allowed_regions__prod"]
    assert region.targets == ("env__prod",)
    statement = region.document["Statement"][0]
    assert statement["Condition"]["StringNotEquals"]["aws:RequestedRegion"] == ["eu-west-1", "eu-central-1"]
    assert {"iam:*", "organizations:*", "sts:*", "cloudfront:*", "route53:*", "support:*"} <= set(statement["NotAction"])
    root_user = scps["deny_root_user"].document["Statement"][0]
    assert root_user["Condition"] == {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"}}
    tags = scps["require_tags"].document["Statement"]
    assert {next(iter(s["Condition"]["Null"])) for s in tags} == {
        f"aws:RequestTag/{t}" for t in ("tenant", "environment", "owner", "cost-center")
    }
    tag_policy = next(p for p in policies if p.type == org.TAG_POLICY)
    assert set(tag_policy.document["tags"]) == {"tenant", "environment", "owner", "cost-center"}


def test_rendered_policy_content_is_the_checked_document(sample, docs):
    policies = resources(docs["policies.tf"], "aws_organizations_policy")
    attachments = resources(docs["policies.tf"], "aws_organizations_policy_attachment")
    assert policies["allowed_regions__dev"]["type"] == "SERVICE_CONTROL_POLICY"
    assert "eu-central-1" in policies["allowed_regions__dev"]["content"]
    assert attachments["allowed_regions__dev__env__dev"]["target_id"] == "${aws_organizations_organizational_unit.env__dev.id}"
    assert policies["tag_policy"]["type"] == "TAG_POLICY"


def test_more_than_five_scps_on_one_target_is_refused():
    at = Location("catalog/platform.yaml", 40, 3)
    many = [org.Policy(f"p{i}", f"p{i}", org.SCP, "", {"Version": "2012-10-17", "Statement": []}, ("root",), at) for i in range(5)]
    errors = org.check_limits(many)
    assert len(errors) == 1 and "6 SCPs would be attached to root" in errors[0].message and errors[0].location == at
    assert not org.check_limits(many[:4])


def test_oversized_region_scp_fails_at_the_environment_line(companyos, repo):
    path = repo / "environments/dev.yaml"
    regions = ["eu-west-1", "eu-central-1"] + [
        f"eu-westsouth{''.join(chr(97 + (i // 26**k) % 26) for k in range(2))}-1" for i in range(300)
    ]
    edit_yaml(path, lambda d: d["aws"].__setitem__("allowed_regions", regions))
    before = {p: p.read_bytes() for p in (repo / "rendered").rglob("*") if p.is_file()}
    result = companyos("check", cwd=repo)
    assert result.code == 2, result.out + result.err
    line = line_of(path, "allowed_regions") + 1  # the list's first item: where the value starts
    expected = f"environments/dev.yaml:{line}:"
    assert any(expected in out and "5120" in out and "allowed-regions" in out for out in (result.out + result.err).splitlines()), (
        result.out + result.err
    )
    assert "Traceback" not in result.err
    assert before == {p: p.read_bytes() for p in (repo / "rendered").rglob("*") if p.is_file()}


def _org_errors(repo: Path) -> list[str]:
    model = pipeline.resolve_only(repo)
    with pytest.raises(CatalogErrors) as caught:
        list(org.render(model, Templates(model.templates)))
    return [str(e) for e in caught.value.errors]


def test_email_pattern_without_tenant_is_refused_at_the_pattern(repo):
    path = repo / "catalog/platform.yaml"
    edit_yaml(path, lambda d: d["aws_organization"]["accounts"].__setitem__("email_pattern", "aws+{org}-{env}@example.com"))
    errors = _org_errors(repo)
    line = line_of(path, "email_pattern")
    assert any(e.startswith(f"catalog/platform.yaml:{line}:") and "already the e-mail of account" in e for e in errors), errors


def test_tenant_naming_a_platform_account_is_refused_at_its_line(repo):
    path = repo / "tenants/acme.yaml"
    edit_yaml(path, lambda d: d["accounts"].__setitem__("dev", "200000000009"))  # dev's dr-verify account
    edit_yaml(repo / "tenants/umbrella.yaml", lambda d: d["accounts"].__setitem__("prod", "100000000002"))  # log-archive
    errors = _org_errors(repo)
    acme_line = line_of(path, "dev: ")
    assert any(e.startswith(f"tenants/acme.yaml:{acme_line}:") and "dr-verify" in e for e in errors), errors
    assert any(e.startswith("tenants/umbrella.yaml:") and "log-archive" in e for e in errors), errors


def test_tenant_naming_another_tenants_account_exits_2(companyos, repo):
    path = repo / "tenants/umbrella.yaml"
    edit_yaml(path, lambda d: d["accounts"].__setitem__("prod", "410000000101"))  # acme's prod account
    result = companyos("check", cwd=repo)
    assert result.code == 2 and "Traceback" not in result.err
    assert f"tenants/umbrella.yaml:{line_of(path, 'prod: ')}:" in result.out + result.err


def test_required_tag_no_root_applies_is_refused(repo):
    path = repo / "catalog/platform.yaml"
    edit_yaml(path, lambda d: d["aws_organization"]["required_tags"].append("project"))
    errors = _org_errors(repo)
    assert any("required tag 'project'" in e and e.startswith("catalog/platform.yaml:") for e in errors), errors


def test_sample_without_an_organization_renders_no_org_root(repo):
    edit_yaml(repo / "catalog/platform.yaml", lambda d: (d.pop("aws_organization"), d.pop("management_account")))
    model = pipeline.resolve_only(repo)
    assert list(org.render(model, Templates(model.templates))) == []


def test_rendered_policies_are_valid_json_documents(sample):
    layout, _ = org.orgmodel.layout(sample.model)
    assert layout is not None
    for policy in org.guardrails(sample.model, layout):
        assert json.loads(policy.minified) == policy.document
