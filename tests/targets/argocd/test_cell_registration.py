"""Argo CD's registration of every cell's cluster after the first (issue 15/19).

A scratch repository with prod split into cells blue/green (the ``celled`` pattern of
test_cells.py) is rendered; the registration YAML is validated against the vendored External
Secrets CRD schemas, the shared root's Terraform is parsed with python-hcl2, and faults are
planted: a dropped registration fails the contract check at the cell's catalog line.
"""

from __future__ import annotations

import subprocess
import sys

import hcl2
import pytest
import yaml
from hcl2 import SerializationOptions

from generator import pipeline, vendor
from generator.errors import CatalogErrors
from generator.ops.allocate import allocate
from generator.targets.argocd import clusters
from helpers import k8s
from helpers.catalog_edit import edit_yaml
from helpers.repo import copy_repo
from helpers.yaml_docs import load_yaml_docs

OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)
VALIDATE_TF = vendor.tools_dir() / "validate_tf.py"
ESO = "external-secrets.io/v1"
SHARED = "rendered/terraform/prod/shared"


def _cells(root, env: str, names: list[str]) -> None:
    edit_yaml(root / f"environments/{env}.yaml", lambda d: d.__setitem__("cells", [{"name": n, "max_tenants": 3} for n in names]))
    allocate(root)


@pytest.fixture(scope="module")
def celled(tmp_path_factory) -> pipeline.Build:
    """The sample with prod split into cells blue (the original cluster) and green."""
    root = copy_repo(tmp_path_factory.mktemp("cells") / "repo")
    _cells(root, "prod", ["blue", "green"])
    return pipeline.build(root)


def _hcl(build: pipeline.Build, path: str) -> dict:
    return hcl2.loads(build.result.files[path].decode(), serialization_options=OPTIONS)


def _resources(doc: dict, kind: str) -> dict[str, dict]:
    return {n: b for item in doc.get("resource", []) for t, named in item.items() if t == kind for n, b in named.items()}


def _data(doc: dict, kind: str) -> dict[str, dict]:
    return {n: b for item in doc.get("data", []) for t, named in item.items() if t == kind for n, b in named.items()}


def _modules(doc: dict) -> dict[str, dict]:
    return {n: b for item in doc.get("module", []) for n, b in item.items()}


def test_one_registration_file_per_extra_cell_valid_against_the_external_secrets_crds(celled):
    files = sorted(p for p in celled.result.files if p.startswith("rendered/argocd/prod/clusters/"))
    assert files == ["rendered/argocd/prod/clusters/green.yaml"]
    docs = load_yaml_docs(celled.result.files[files[0]])
    assert [d["kind"] for d in docs] == ["SecretStore", "ExternalSecret"]
    for doc in docs:
        validator = k8s._crd_validator(doc["kind"], ESO)
        assert [e.message for e in validator.iter_errors(doc)] == [], doc["kind"]
    store, external = docs
    assert external["spec"]["secretStoreRef"] == {"name": store["metadata"]["name"], "kind": "SecretStore"}
    assert store["spec"]["provider"]["aws"]["auth"]["jwt"]["serviceAccountRef"]["name"] == "argocd-application-controller"
    template = external["spec"]["target"]["template"]
    assert template["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "cluster"
    assert yaml.safe_load(template["data"]["config"])["awsAuthConfig"]["clusterName"] == "{{ .cluster }}"
    # a validator that accepts anything would pass: a misspelt field must fail
    broken = {**external, "spec": {**external["spec"], "secretStoreRefs": external["spec"]["secretStoreRef"]}}
    assert list(k8s._crd_validator("ExternalSecret", ESO).iter_errors(broken))
    # no registration in the single-cell environments, nor for the first cell (Argo CD's own)
    assert not any("/clusters/" in p for p in celled.result.files if not p.startswith("rendered/argocd/prod/"))


def test_the_cluster_secret_name_is_the_destination_of_that_cells_applicationset(celled):
    appsets = load_yaml_docs(celled.result.files["rendered/argocd/prod/applicationsets.yaml"])
    destination = {a["metadata"]["labels"]["companyos.io/cell"]: a["spec"]["template"]["spec"]["destination"]["name"] for a in appsets}
    external = load_yaml_docs(celled.result.files["rendered/argocd/prod/clusters/green.yaml"])[1]
    assert external["spec"]["target"]["template"]["data"]["name"] == destination["green"] == "companyos-prod-green"
    # and the key it reads is the secret the shared root writes for that cell
    [extract] = external["spec"]["dataFrom"]
    secrets = _resources(_hcl(celled, f"{SHARED}/cells.tf"), "aws_secretsmanager_secret")
    assert extract["extract"]["key"] == secrets["argocd_cell_green"]["name"]


def test_the_root_application_applies_the_registrations_through_a_project_that_whitelists_them(celled):
    project, root_app = load_yaml_docs(celled.result.files["rendered/argocd/prod/bootstrap.yaml"])
    assert "clusters/*.yaml" in k8s.brace_paths(root_app["spec"]["source"]["directory"]["include"])
    kinds = {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]}
    assert set(clusters.REGISTRATION_KINDS) <= kinds
    for doc in load_yaml_docs(celled.result.files["rendered/argocd/prod/clusters/green.yaml"]):
        assert doc["metadata"]["namespace"] == project["spec"]["destinations"][0]["namespace"]


def test_shared_root_registers_exactly_the_extra_cells_from_their_eks_module_outputs(celled):
    cells_tf = _hcl(celled, f"{SHARED}/cells.tf")
    assert set(_resources(cells_tf, "aws_secretsmanager_secret")) == {"argocd_cell_green"}
    [version] = _resources(cells_tf, "aws_secretsmanager_secret_version").values()
    assert version["secret_id"] == "${aws_secretsmanager_secret.argocd_cell_green.id}"
    body = version["secret_string"]
    for key, output in (("cluster", "cluster_name"), ("server", "cluster_endpoint"), ("ca", "cluster_certificate_authority_data")):
        assert f"{key} = module.eks_green.{output}" in " ".join(body.split()), body
    modules = _modules(_hcl(celled, f"{SHARED}/main.tf"))
    assert {"eks", "eks_green"} <= set(modules)
    # the first cell's cluster (Argo CD's own) gets neither an access entry nor a rule
    assert "access_entries" not in modules["eks"] and "security_group_additional_rules" not in modules["eks"]
    green = modules["eks_green"]
    entry = green["access_entries"]["argocd"]
    assert entry["principal_arn"] == "${aws_iam_role.argocd_standby.arn}"
    assert entry["policy_associations"]["admin"]["policy_arn"].endswith("/AmazonEKSClusterAdminPolicy")
    rule = green["security_group_additional_rules"]["argocd"]
    assert (rule["type"], rule["from_port"], rule["to_port"], rule["protocol"]) == ("ingress", 443, 443, "tcp")
    assert rule["source_security_group_id"] == "${module.eks.node_security_group_id}" and "cidr_blocks" not in rule
    # the role reads exactly the cells' connections and describes exactly their clusters
    [policy] = _data(cells_tf, "aws_iam_policy_document").values()
    statements = {tuple(s["actions"]): s for s in policy["statement"]}
    assert statements[("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")]["resources"] == [
        "${aws_secretsmanager_secret.argocd_cell_green.arn}"
    ]
    assert statements[("eks:DescribeCluster",)]["resources"] == ["${module.eks_green.cluster_arn}"]
    [attached] = _resources(cells_tf, "aws_iam_role_policy").values()
    assert attached["role"] == "${aws_iam_role.argocd_standby.id}"


def test_one_controller_role_trusted_only_by_the_first_clusters_application_controller(celled):
    dr = _hcl(celled, f"{SHARED}/dr.tf")
    roles = {n: r for n, r in _resources(dr, "aws_iam_role").items() if n.startswith("argocd")}
    assert set(roles) == {"argocd_standby"}
    assert not _resources(_hcl(celled, f"{SHARED}/cells.tf"), "aws_iam_role")  # no second role
    trust = _data(dr, "aws_iam_policy_document")["argocd_standby_trust"]
    [statement] = trust["statement"]
    assert statement["principals"][0]["identifiers"] == ["${module.eks.oidc_provider_arn}"]
    subs = [c["values"] for c in statement["condition"] if c["variable"].endswith(":sub")]
    assert subs == [["system:serviceaccount:argocd:argocd-application-controller"]]
    values = yaml.safe_load(celled.result.files["rendered/argocd/prod/controller-values.yaml"])
    role = values["controller"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role.endswith(f":role/{roles['argocd_standby']['name']}")


def test_the_cell_terraform_passes_the_vendored_provider_and_module_data(celled, tmp_path):
    for name in ("main.tf", "cells.tf"):
        target = tmp_path / SHARED / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(celled.result.files[f"{SHARED}/{name}"])
    out = subprocess.run([sys.executable, str(VALIDATE_TF), "-q", str(tmp_path)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_without_a_standby_the_cells_file_owns_the_controller_role(tmp_path):
    """stage has no disaster_recovery: cells.tf creates the role, trusted by the controller only."""
    root = copy_repo(tmp_path / "repo")
    _cells(root, "stage", ["east", "west"])
    build = pipeline.build(root)
    cells_tf = _hcl(build, "rendered/terraform/stage/shared/cells.tf")
    [(label, role)] = _resources(cells_tf, "aws_iam_role").items()
    assert (label, role["name"]) == ("argocd_controller", "companyos-stage-argocd-controller")
    trust = _data(cells_tf, "aws_iam_policy_document")["argocd_controller_trust"]
    subs = [c["values"] for c in trust["statement"][0]["condition"] if c["variable"].endswith(":sub")]
    assert subs == [["system:serviceaccount:argocd:argocd-application-controller"]]
    values = yaml.safe_load(build.result.files["rendered/argocd/stage/controller-values.yaml"])
    assert values["controller"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(
        ":role/companyos-stage-argocd-controller"
    )
    assert "rendered/argocd/stage/clusters/west.yaml" in build.result.files


def test_a_destination_nobody_registers_fails_the_check_at_the_cells_catalog_line(tmp_path, monkeypatch):
    root = copy_repo(tmp_path / "repo")
    _cells(root, "prod", ["blue", "green"])
    monkeypatch.setattr(clusters, "render", lambda *args, **kwargs: iter(()))
    with pytest.raises(CatalogErrors) as raised:
        pipeline.build(root)
    errors = [str(e) for e in raised.value.errors]
    line = next(i for i, text in enumerate((root / "environments/prod.yaml").read_text().splitlines(), 1) if "green" in text)
    missing = [e for e in errors if "argocd_cluster 'companyos-prod-green'" in e]
    assert missing and all(e.startswith(f"environments/prod.yaml:{line}:") for e in missing), errors
    assert all("companyos-prod-green" in e for e in errors), errors  # nothing else breaks


def test_a_third_cell_adds_its_files_and_changes_only_those_that_must_change(celled, tmp_path):
    root = copy_repo(tmp_path / "repo")
    _cells(root, "prod", ["blue", "green"])
    before = pipeline.build(root).result.files
    _cells(root, "prod", ["blue", "green", "red"])
    after = pipeline.build(root).result.files
    added = sorted(set(after) - set(before))
    assert added == ["rendered/argocd/prod/clusters/red.yaml"]
    changed = sorted(p for p in before if p in after and before[p] != after[p] and not p.startswith("rendered/.companyos-units/"))
    assert changed == [
        "rendered/argocd/prod/addons.yaml",  # the add-ons on the new cluster
        "rendered/argocd/prod/applicationsets.yaml",  # the new cell's ApplicationSet
        "rendered/argocd/prod/controller-values.yaml",  # one more controller shard
        "rendered/argocd/prod/platform.yaml",  # its tenant-* destination
        f"{SHARED}/addons.tf",  # the add-ons' IRSA roles trust the new cluster's issuer too
        f"{SHARED}/cells.tf",  # its connection secret, read by the controller's role
        f"{SHARED}/main.tf",  # its cluster, access entry and API rule
    ], changed
    assert after["rendered/argocd/prod/clusters/green.yaml"] == before["rendered/argocd/prod/clusters/green.yaml"]


def test_single_cell_environments_register_nothing(sample):
    files = sample.result.files
    assert not [p for p in files if "/clusters/" in p or p.endswith("/cells.tf")]
    for env in ("dev", "stage", "prod"):
        root_app = load_yaml_docs(files[f"rendered/argocd/{env}/bootstrap.yaml"])[1]
        assert "clusters/*.yaml" not in k8s.brace_paths(root_app["spec"]["source"]["directory"]["include"])
