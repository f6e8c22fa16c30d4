"""Per-tenant records of the shared and pool roots (``<root>/tenants/<name>.json``) and one
EKS cluster per cell in the shared root.

Onboarding a tenant adds files to the roots and changes none of their ``.tf`` files, so two
onboarding pull requests do not conflict there (issue 19). Terraform itself reads the records
(``fileset`` + ``jsondecode``): the rendered expressions are evaluated by the real
``terraform`` binary over the rendered records.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest
from hcl2.utils import SerializationOptions

from generator import pipeline
from generator.ops.allocate import allocate
from helpers.catalog_edit import edit_yaml
from helpers.repo import copy_repo

TERRAFORM = shutil.which("terraform")


def _roots_files(result, env: str | None = None) -> dict[str, bytes]:
    out = {}
    for path, data in result.files.items():
        in_roots = path.startswith("rendered/terraform/") and ("/shared/" in path or "/pool-" in path)
        if in_roots:
            out[path] = data
    return out


def test_onboarding_adds_record_files_and_changes_no_tf_file_of_shared_or_pool_roots(tmp_path):
    root = copy_repo(tmp_path / "repo")
    before = pipeline.build(root).result
    shutil.copy(root / "tenants/globex.yaml", root / "tenants/newco.yaml")
    edit_yaml(root / "tenants/newco.yaml", lambda d: d.__setitem__("name", "newco"))
    after = pipeline.build(root).result
    old, new = _roots_files(before), _roots_files(after)
    assert sorted(p for p in old if old[p] != new.get(p)) == []
    added = sorted(set(new) - set(old))
    expected = {f"rendered/terraform/{env}/shared/tenants/newco.json" for env in ("dev", "stage", "prod")}
    expected |= {f"rendered/terraform/{env}/pool-standard/tenants/newco.json" for env in ("dev", "stage", "prod")}
    assert set(added) == expected
    for path in added:
        assert after.entry(path)["tenant"] == "newco"  # the tenant's unit, not the fleet's
        assert json.loads(new[path])["tenant"] == "newco"
    # the add-on roles too: the operator's reader list is an expression over the records
    assert before.files["rendered/terraform/prod/shared/addons.tf"] == after.files["rendered/terraform/prod/shared/addons.tf"]


def _terraform_values(folder: Path) -> dict:
    env = {"TF_IN_AUTOMATION": "1", "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(folder)}
    for args in (["init", "-input=false", "-backend=false"], ["apply", "-input=false", "-auto-approve"]):
        done = subprocess.run([TERRAFORM, *args], cwd=folder, capture_output=True, text=True, env=env, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    shown = subprocess.run([TERRAFORM, "output", "-json"], cwd=folder, capture_output=True, text=True, env=env, check=True)
    return {k: v["value"] for k, v in json.loads(shown.stdout).items()}


def _line(text: str, pattern: str) -> str:
    match = re.search(pattern, text, re.MULTILINE)
    assert match, pattern
    return match.group(1)


@pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")
def test_terraform_reads_the_records_as_the_fleet_wide_lists_were(sample, tmp_path):
    """The rendered locals and the operator's reader expression, evaluated by Terraform over
    the rendered records, give exactly the tenants, groups, CIDRs and reader roles of the model."""
    files = sample.result.files
    shared = files["rendered/terraform/prod/shared/main.tf"].decode()
    addons = files["rendered/terraform/prod/shared/addons.tf"].decode()
    pool = files["rendered/terraform/prod/pool-standard/main.tf"].decode()
    readers = _line(addons, r"^\s*resources\s*=\s*(.*\[for t in values\(local\.tenant_records\).*\].*)$")
    harness = {
        "shared-root": (
            "locals {\n  " + _line(shared, r"^\s*(tenant_records = .*)$") + "\n}\n"
            f'output "readers" {{\n  value = {readers}\n}}\n'
            'output "groups" {\n  value = { for tenant, t in local.tenant_records : tenant => t.pod_group }\n}\n'
            'output "cidrs" {\n  value = { for tenant, t in local.tenant_records : tenant => t.data_cidr }\n}\n'
        ),
        "pool-root": "locals {\n  "
        + _line(pool, r"^\s*(pool_tenants = .*)$")
        + '\n}\noutput "members" {\n  value = local.pool_tenants\n}\n',
    }
    for name, folder in (("shared-root", "shared"), ("pool-root", "pool-standard")):
        (tmp_path / name / "tenants").mkdir(parents=True)
        (tmp_path / name / "main.tf").write_text(harness[name], encoding="utf-8")
        for path, data in files.items():
            if path.startswith(f"rendered/terraform/prod/{folder}/tenants/"):
                (tmp_path / name / "tenants" / Path(path).name).write_bytes(data)
    model = sample.model
    prod = model.in_environment("prod")
    got = _terraform_values(tmp_path / "shared-root")
    assert got["groups"] == {d.name: f"companyos-prod-{d.name}-pods" for d in prod}
    nets = model.catalog.single("networks").spec.environments["prod"]
    assert got["cidrs"] == {d.name: nets.vpcs[f"tenant-{d.name}" if d.dedicated else f"pool-{d.tier.name}"] for d in prod}
    # every tenant's reader from its record, and each pool's reader (listed: pools come with tiers)
    pools = {(d.account_id, d.tier.name) for d in prod if not d.dedicated}
    assert sorted(got["readers"]) == sorted(
        [f"arn:aws:iam::{d.account_id}:role/companyos-prod-{d.name}-secret-reader" for d in prod]
        + [f"arn:aws:iam::{account}:role/companyos-prod-pool-{tier}-secret-reader" for account, tier in pools]
    )
    members = _terraform_values(tmp_path / "pool-root")["members"]
    assert sorted(members) == sorted(d.name for d in prod if not d.dedicated and d.tier.name == "standard")
    # a record of a tenant whose reader trusts another principal is not granted: plant one
    planted = json.loads((tmp_path / "shared-root" / "tenants" / "acme.json").read_text())
    planted["secret_reader"]["principal"] = "arn:aws:iam::999999999999:role/someone-else"
    (tmp_path / "shared-root" / "tenants" / "acme.json").write_text(json.dumps(planted))
    assert not [r for r in _terraform_values(tmp_path / "shared-root")["readers"] if "-acme-" in r]


@pytest.fixture(scope="module")
def celled(tmp_path_factory) -> pipeline.Build:
    root = copy_repo(tmp_path_factory.mktemp("cells") / "repo")
    cells = [{"name": "blue", "max_tenants": 3}, {"name": "green", "max_tenants": 3}]
    edit_yaml(root / "environments/prod.yaml", lambda d: d.__setitem__("cells", cells))
    allocate(root)
    return pipeline.build(root)


def _modules(text: str) -> dict[str, dict]:
    doc = hcl2.loads(text, serialization_options=SerializationOptions(strip_string_quotes=True, with_comments=False))
    return {name: body for block in doc["module"] for name, body in block.items()}


def test_each_cell_beyond_the_first_gets_an_eks_cluster_with_the_same_pinned_module(celled, sample):
    shared = celled.result.files["rendered/terraform/prod/shared/main.tf"].decode()
    modules = _modules(shared)
    assert modules["eks"]["name"] == "companyos-prod"  # the first cell keeps the cluster
    assert modules["eks_green"]["name"] == "companyos-prod-green"
    for key in ("source", "version", "vpc_id", "subnet_ids", "kubernetes_version", "addons", "eks_managed_node_groups"):
        assert modules["eks_green"][key] == modules["eks"][key], key
    assert "eks_blue" not in modules
    # each tenant's pod group admits the nodes of its own cell's cluster
    records = {
        Path(p).stem: json.loads(d) for p, d in celled.result.files.items() if p.startswith("rendered/terraform/prod/shared/tenants/")
    }
    cells = json.loads(json.dumps(celled.model.catalog.single("networks").spec.environments["prod"].cells))
    assert {t: r["cell"] for t, r in records.items()} == cells
    assert '"blue"  = module.eks.node_security_group_id' in shared and '"green" = module.eks_green.node_security_group_id' in shared
    assert "}[local.tenant_records[each.key].cell]" in shared
    # the add-on roles trust both clusters' OIDC providers
    addons = _modules(celled.result.files["rendered/terraform/prod/shared/addons.tf"].decode())
    for name, body in addons.items():
        if "oidc_providers" in body:
            providers = body["oidc_providers"]
            assert {p["provider_arn"] for p in providers.values()} == {
                "${module.eks.oidc_provider_arn}",
                "${module.eks_green.oidc_provider_arn}",
            }, name
    # a single-cell environment renders one cluster, as before
    assert set(_modules(sample.result.files["rendered/terraform/prod/shared/main.tf"].decode())) & {"eks", "eks_green"} == {"eks"}
