"""Account vending: a dedicated tenant without account ids gets its accounts from the org root
(one file per tenant, tenant-<name>.tf, with its own output), and its Terraform roots read the
ids from that output through remote state: no literal id in any of its .tf files."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

from generator import pipeline, vendor
from generator.model import naming
from generator.ops import affected, allocate
from generator.targets.terraform import vended
from helpers.repo import copy_repo

ORG = "rendered/terraform/org"
VALIDATE_TF = Path(vendor.__file__).parent / "tools" / "validate_tf.py"
OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)
VEND = """name: vend
tier: regulated
owner: team-vend@example.com
cost_center: CC-3001
environments: [dev, prod]
services: [api]
"""


def parse(text: str) -> dict[str, Any]:
    return hcl2.loads(text, serialization_options=OPTIONS)


def resources(doc: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {name: body for block in doc.get("resource", []) for t, named in block.items() if t == rtype for name, body in named.items()}


@pytest.fixture(scope="module")
def vend_build(tmp_path_factory: pytest.TempPathFactory) -> pipeline.Build:
    root = copy_repo(tmp_path_factory.mktemp("vend") / "repo")
    (root / "tenants/vend.yaml").write_text(VEND)
    allocate.allocate(root)
    return pipeline.build(root)


def files(build: pipeline.Build, prefix: str) -> dict[str, str]:
    return {p: d.decode() for p, d in build.result.files.items() if p.startswith(prefix)}


def test_each_dedicated_tenant_has_its_own_org_file_with_its_accounts_and_output(sample):
    org = files(sample, f"{ORG}/")
    dedicated = sorted({d.name for d in sample.model.deployments if d.dedicated})
    assert sorted(Path(p).name for p in org if Path(p).name.startswith("tenant-")) == [f"tenant-{t}.tf" for t in dedicated]
    main = parse(org[f"{ORG}/main.tf"])
    assert not any(body["tags"]["tenant"] in dedicated for body in resources(main, "aws_organizations_account").values())
    acme = parse(org[f"{ORG}/tenant-acme.tf"])
    accounts = resources(acme, "aws_organizations_account")
    assert set(accounts) == {f"acme__{d.env}" for d in sample.model.deployments if d.name == "acme"}
    imports = {blk["to"]: blk["id"] for blk in acme["import"]}
    assert imports["${aws_organizations_account.acme__prod}"] == sample.model.catalog.tenants["acme"].spec.accounts["prod"]
    out = acme["output"][0][vended.output("acme")]["value"]
    assert out["prod"] == "${aws_organizations_account.acme__prod.id}"


def test_a_tenant_without_ids_is_vended_with_pattern_email_ou_tags_and_no_destroy(vend_build, tmp_path):
    org = files(vend_build, f"{ORG}/")
    doc = parse(org[f"{ORG}/tenant-vend.tf"])
    assert "import" not in doc, "nothing to adopt: the accounts are created"
    accounts = resources(doc, "aws_organizations_account")
    assert set(accounts) == {"vend__dev", "vend__prod"}
    dev = accounts["vend__dev"]
    assert dev["email"] == "aws+companyos-vend-dev@example.com" and dev["name"] == "companyos-vend-dev"
    assert dev["parent_id"] == "${aws_organizations_organizational_unit.env__dev__regulated.id}"
    assert dev["tags"] == {"tenant": "vend", "environment": "dev", "owner": "team-vend@example.com", "cost-center": "CC-3001"}
    assert dev["close_on_deletion"] is False and dev["lifecycle"][0]["prevent_destroy"] is True
    assert doc["output"][0]["tenant_vend_account_ids"]["value"] == {
        "dev": "${aws_organizations_account.vend__dev.id}",
        "prod": "${aws_organizations_account.vend__prod.id}",
    }
    # the whole org root, with the new file, passes the vendored AWS provider argument check
    for path, text in org.items():
        (tmp_path / Path(path).name).write_text(text)
    run = subprocess.run([sys.executable, str(VALIDATE_TF), str(tmp_path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_adding_a_vended_tenant_adds_an_org_file_and_changes_no_other(sample, vend_build):
    before, after = files(sample, f"{ORG}/"), files(vend_build, f"{ORG}/")
    # its accounts, and its team's permission sets and assignments (identity-vend.tf)
    assert set(after) - set(before) == {f"{ORG}/tenant-vend.tf", f"{ORG}/identity-vend.tf"}
    changed = {p for p in before if before[p] != after[p]}
    assert not changed, changed  # no shared org file changes (issue 19: merges)


def test_vended_tenant_roots_read_the_id_from_the_org_output_and_hold_no_literal(vend_build):
    for env in ("dev", "prod"):
        root = f"rendered/terraform/{env}/tenant-vend"
        tf = {p: t for p, t in files(vend_build, f"{root}/").items() if p.endswith(".tf")}
        assert tf and f"{root}/{vended.FILENAME}" in tf
        for path, text in tf.items():
            assert not naming.VENDED_ACCOUNT.search(text), path
            parse(text)  # every file still parses
            # no 12-digit id of the tenant's own: only the platform's (state, shared services, DR verify)
            ids = set(re.findall(r"\b\d{12}\b", text))
            model = vend_build.model
            platform_ids = {model.platform.terraform_state.account, model.platform.management_account}
            platform_ids |= {a for e in model.environments for a in (e.accounts.shared_services, e.accounts.dr_verify)}
            assert model.platform.aws_organization is not None  # config.tf: the org log bucket's name has log-archive's id
            platform_ids.add(model.platform.aws_organization.log_archive_account)
            assert ids <= platform_ids, (path, ids - platform_ids)
        state = parse(tf[f"{root}/{vended.FILENAME}"])
        remote = state["data"][0]["terraform_remote_state"]["org"]
        assert remote["config"]["key"] == "org/terraform.tfstate"
        local = state["locals"][0][f"account_vend__{env}"]
        assert local == f'${{data.terraform_remote_state.org.outputs.tenant_vend_account_ids["{env}"]}}'
        provider = parse(tf[f"{root}/providers.tf"])["provider"][0]["aws"]
        assert provider["allowed_account_ids"] == [f"${{local.account_vend__{env}}}"]
        assert provider["assume_role"][0]["role_arn"] == f"arn:aws:iam::${{local.account_vend__{env}}}:role/companyos-terraform"
        # the output read is one the org root declares
        org_doc = parse(files(vend_build, f"{ORG}/tenant-vend.tf")[f"{ORG}/tenant-vend.tf"])
        assert env in org_doc["output"][0][vended.output("vend")]["value"]


def test_adopted_tenant_roots_are_unchanged_by_vending(sample):
    tf = files(sample, "rendered/terraform/dev/tenant-acme/")
    assert f"rendered/terraform/dev/tenant-acme/{vended.FILENAME}" not in tf
    assert '"210000000101"' in tf["rendered/terraform/dev/tenant-acme/providers.tf"]


def test_vended_account_is_created_with_the_terraform_role_and_ci_starts_from_management(vend_build):
    doc = parse(files(vend_build, f"{ORG}/tenant-vend.tf")[f"{ORG}/tenant-vend.tf"])
    assert resources(doc, "aws_organizations_account")["vend__dev"]["role_name"] == "companyos-terraform"
    acme = parse(files(vend_build, f"{ORG}/tenant-acme.tf")[f"{ORG}/tenant-acme.tf"])
    assert "role_name" not in resources(acme, "aws_organizations_account")["acme__dev"], "an adopted account keeps its roles"
    model = vend_build.model
    info = affected.root_info(model, "rendered/terraform/dev/tenant-vend")
    assert info.account_id == model.platform.management_account
    assert info.role_arn == f"arn:aws:iam::{model.platform.management_account}:role/companyos-terraform"
    assert affected.root_info(model, "rendered/terraform/dev/tenant-acme").account_id == "210000000101"
