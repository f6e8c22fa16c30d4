"""A vended account's id outside Terraform: held until `companyos record-accounts` records what
the org root's apply assigned, then rendered literally; a placeholder never reaches a file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from hcl2 import SerializationOptions

from generator import pipeline
from generator.errors import CatalogErrors
from generator.ops import accounts, allocate
from generator.targets.terraform import vended
from helpers.repo import copy_repo, snapshot

VEND = """# a regulated tenant whose accounts the org root vends
name: vend
tier: regulated
owner: team-vend@example.com
cost_center: CC-3001
environments: [dev, prod]
services: [api]
"""
IDS = {"dev": "123456789012", "prod": "210987654321"}
HELD = "companyos.io/held"


def org_outputs(ids: dict[str, str]) -> str:
    """What `terraform output -json` of rendered/terraform/org prints (other outputs included)."""
    return json.dumps(
        {
            "account_ids": {"sensitive": False, "type": ["map", "string"], "value": {"log-archive/org": "100000000002"}},
            vended.output("vend"): {"sensitive": False, "type": ["map", "string"], "value": ids},
        }
    )


def vend_repo(dest: Path) -> Path:
    root = copy_repo(dest)
    (root / "tenants/vend.yaml").write_text(VEND)
    allocate.allocate(root)
    return root


@pytest.fixture(scope="module")
def pending(tmp_path_factory: pytest.TempPathFactory) -> pipeline.Build:
    return pipeline.build(vend_repo(tmp_path_factory.mktemp("pending") / "repo"))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> pipeline.Build:
    root = vend_repo(tmp_path_factory.mktemp("recorded") / "repo")
    accounts.record_accounts(root, org_outputs(IDS))
    return pipeline.build(root)


def text(build: pipeline.Build, path: str) -> str:
    return build.result.files[path].decode()


def namespace_docs(build: pipeline.Build, env: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text(build, f"rendered/argocd/{env}/namespaces/vend.yaml")) if d]


def elements(build: pipeline.Build, env: str) -> list[Any]:
    [path] = [p for p in build.result.files if re.fullmatch(rf"rendered/argocd/{env}/cells/[^/]+/vend\.json", p)]
    loaded: list[Any] = json.loads(text(build, path))
    return loaded


def shared_record(build: pipeline.Build, env: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(text(build, f"rendered/terraform/{env}/shared/tenants/vend.json"))
    return loaded


def test_until_recorded_the_kubernetes_side_is_held_and_terraform_reads_the_org_state(pending: pipeline.Build) -> None:
    for env in IDS:
        assert not [p for p in pending.result.files if p.startswith(f"rendered/helm/{env}/vend/")]  # no chart values
        assert not [p for p in pending.result.files if p.startswith(f"rendered/migrations/{env}/vend/")]
        assert elements(pending, env) == []  # the ApplicationSet makes no Application
        docs = namespace_docs(pending, env)
        quota = next(d for d in docs if d["kind"] == "ResourceQuota")
        assert quota["spec"]["hard"]["pods"] == "0"
        assert "record-accounts" in quota["metadata"]["annotations"][HELD]
        assert not [d for d in docs if d["kind"] in ("SecretStore", "SecurityGroupPolicy")]
        assert shared_record(pending, env)["secret_reader"] == {"role": "", "principal": ""}
        root = f"rendered/terraform/{env}/tenant-vend"
        org = hcl2.loads(text(pending, f"{root}/{vended.FILENAME}"), serialization_options=SerializationOptions(strip_string_quotes=True))
        assert vended.local_name("vend", env) in org["locals"][0]
        assert f"local.{vended.local_name('vend', env)}" in text(pending, f"{root}/main.tf")
    # Only the units' bookkeeping (contract strings of Terraform's pre-resolve text) may name it.
    assert not [p for p, d in pending.result.files.items() if b"<account:" in d and not p.startswith("rendered/.companyos-units/")]


def test_record_accounts_writes_the_ids_into_the_tenant_file_only(tmp_path: Path) -> None:
    root = vend_repo(tmp_path / "repo")
    before = snapshot(root)
    lines = accounts.record_accounts(root, org_outputs({"dev": IDS["dev"]}))
    assert lines == ["vend/dev: account 123456789012", "vend/prod: still held (not in the org root's outputs: apply it first)"]
    after = snapshot(root)
    assert [p for p in after if after[p] != before.get(p)] == ["tenants/vend.yaml"]
    written = (root / "tenants/vend.yaml").read_text()
    assert written.startswith("# a regulated tenant whose accounts the org root vends\n")  # comments kept
    assert yaml.safe_load(written)["vended_accounts"] == {"dev": "123456789012"}
    assert accounts.record_accounts(root, org_outputs({"dev": IDS["dev"]})) == [
        "vend/prod: still held (not in the org root's outputs: apply it first)"
    ]
    # The tenant leaves dev: its recorded id is released.
    (root / "tenants/vend.yaml").write_text(written.replace("environments: [dev, prod]", "environments: [prod]"))
    assert accounts.record_accounts(root, org_outputs(IDS)) == ["vend/prod: account 210987654321", "vend/dev: released 123456789012"]
    assert yaml.safe_load((root / "tenants/vend.yaml").read_text())["vended_accounts"] == {"prod": "210987654321"}


def test_once_recorded_every_file_names_the_real_account(recorded: pipeline.Build) -> None:
    for env, account in IDS.items():
        values = yaml.safe_load(text(recorded, f"rendered/helm/{env}/vend/api.yaml"))
        assert f"arn:aws:iam::{account}:role/" in json.dumps(values)
        assert elements(recorded, env)  # Applications again
        store = next(d for d in namespace_docs(recorded, env) if d["kind"] == "SecretStore")
        assert f"arn:aws:iam::{account}:role/" in json.dumps(store)
        assert shared_record(recorded, env)["secret_reader"]["role"].startswith(f"arn:aws:iam::{account}:role/")
        root = f"rendered/terraform/{env}/tenant-vend"
        assert f"{root}/{vended.FILENAME}" not in recorded.result.files  # no org state read left
        assert account in text(recorded, f"{root}/main.tf")
    org = text(recorded, "rendered/terraform/org/tenant-vend.tf")
    assert "import {" not in org  # still the org root's own account, not adopted


def test_a_placeholder_in_any_rendered_file_is_an_error_at_its_line(tmp_path: Path) -> None:
    root = copy_repo(tmp_path / "repo")
    template = root / "templates/helm/values.yaml.j2"
    template.write_text(template.read_text() + "# role in <account:acme/dev>\n")
    with pytest.raises(CatalogErrors) as caught:
        pipeline.build(root)
    found = [str(e) for e in caught.value.errors]
    assert found and all("<account:acme/dev>" in e and "record-accounts" in e for e in found)
    assert all(re.match(r"^rendered/helm/[^:]+\.yaml:\d+:\d+: ", e) for e in found)
    # the column is the marker's: "# role in " precedes it on the planted line
    assert all(e.split(":")[2] == str(len("# role in ") + 1) for e in found)


def test_bad_outputs_are_refused_and_nothing_is_written(companyos: Any, tmp_path: Path) -> None:
    root = vend_repo(tmp_path / "repo")
    before = snapshot(root)
    for bad in ("not json", org_outputs({"dev": "12345"}), json.dumps({vended.output("vend"): {"value": ["123456789012"]}})):
        (tmp_path / "out.json").write_text(bad)
        result = companyos("record-accounts", "--outputs", str(tmp_path / "out.json"), cwd=root)
        assert result.code == 2, (bad, result)
        assert "Traceback" not in result.err
    assert snapshot(root) == before
    (tmp_path / "out.json").write_text(org_outputs(IDS))
    result = companyos("record-accounts", "--outputs", str(tmp_path / "out.json"), "--dry-run", cwd=root)
    assert result.code == 0 and "vend/prod: account 210987654321" in result.out
    assert snapshot(root) == before
    result = companyos("record-accounts", "--outputs", str(tmp_path / "out.json"), cwd=root)
    assert result.code == 0
    assert yaml.safe_load((root / "tenants/vend.yaml").read_text())["vended_accounts"] == IDS


def test_a_recorded_id_of_another_owner_is_an_error_at_its_line(companyos: Any, tmp_path: Path) -> None:
    root = vend_repo(tmp_path / "repo")
    audit = yaml.safe_load((root / "catalog/platform.yaml").read_text())["aws_organization"]["audit_account"]
    (root / "tenants/vend.yaml").write_text(VEND + f'vended_accounts:\n  dev: "{audit}"\n')
    result = companyos("check", cwd=root)
    assert result.code == 2
    assert re.search(rf"tenants/vend\.yaml:9:\d+: account {audit} of .* already belongs to", result.err + result.out)
