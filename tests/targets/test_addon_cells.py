"""Platform add-ons on every cell's cluster, and the names cells reserve (issue 19).

An environment with cells blue (the original cluster) and green: every add-on gets one
Application per cell cluster, valid against the vendored Application CRD schema; the add-ons
file does not change when a tenant is added; a name a cell would take is a load error.
"""

from __future__ import annotations

import shutil

import pytest

from generator import pipeline
from generator.errors import CatalogErrors
from generator.ops.allocate import allocate
from helpers import k8s
from helpers.catalog_edit import edit_yaml
from helpers.repo import copy_repo
from helpers.yaml_docs import load_yaml_docs

CELLS = [{"name": "blue", "max_tenants": 3}, {"name": "green", "max_tenants": 3}]


def _celled(root):
    edit_yaml(root / "environments/prod.yaml", lambda d: d.__setitem__("cells", CELLS))
    allocate(root)
    return root


@pytest.fixture(scope="module")
def celled_root(tmp_path_factory):
    return _celled(copy_repo(tmp_path_factory.mktemp("addon-cells") / "repo"))


def test_every_addon_runs_on_every_cells_cluster(celled_root, sample):
    build = pipeline.build(celled_root)
    docs = load_yaml_docs(build.result.files["rendered/argocd/prod/addons.yaml"])
    apps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Application"}
    single = {
        d["metadata"]["name"] for d in load_yaml_docs(sample.result.files["rendered/argocd/prod/addons.yaml"]) if d["kind"] == "Application"
    }
    assert single and set(apps) == single | {f"{name}-green" for name in single}
    validator = k8s._crd_validator("Application")
    for name, app in apps.items():
        assert [e.message for e in validator.iter_errors(app)] == [], name
        green = name.endswith("-green")
        assert app["spec"]["destination"]["name"] == ("companyos-prod-green" if green else "companyos-prod"), name
        assert (app["metadata"]["labels"].get("companyos.io/cell") == "green") == green
    # a value naming the cluster names the cell's cluster (Karpenter's clusterName)
    karpenter = apps.get("prod-addon-karpenter-green")
    if karpenter is not None:
        assert "companyos-prod-green" in str(karpenter["spec"]["source"]["helm"]["valuesObject"])
        assert "'companyos-prod'" not in str(karpenter["spec"]["source"]["helm"]["valuesObject"])
    [project] = [d for d in docs if d["kind"] == "AppProject"]
    assert {d["name"] for d in project["spec"]["destinations"]} == {"companyos-prod", "companyos-prod-green"}


def test_the_addons_file_does_not_change_when_a_tenant_is_added(tmp_path):
    root = _celled(copy_repo(tmp_path / "repo"))
    before = pipeline.build(root).result.files
    shutil.copy(root / "tenants/globex.yaml", root / "tenants/newco.yaml")
    edit_yaml(root / "tenants/newco.yaml", lambda d: d.__setitem__("name", "newco"))
    edit_yaml(root / "tenants/newco.yaml", lambda d: d.__setitem__("environments", ["dev", "stage"]))
    after = pipeline.build(root).result.files
    for env in ("dev", "stage", "prod"):
        assert before[f"rendered/argocd/{env}/addons.yaml"] == after[f"rendered/argocd/{env}/addons.yaml"], env


def test_a_name_a_cell_reserves_is_refused_with_both_owners(tmp_path):
    """An add-on called 'keda-green' would own prod-addon-keda-green, the green cell's KEDA."""
    root = _celled(copy_repo(tmp_path / "repo"))
    planted = root / "catalog/addons/keda-green.yaml"
    shutil.copy(root / "catalog/addons/keda.yaml", planted)

    def second_keda(d) -> None:  # otherwise valid: its own namespace, no CRDs or role of its own
        d.update(name="keda-green", namespace="keda-green", provides_crds=[])
        for key in ("service_account", "iam_policy", "requires_crds"):
            d.pop(key, None)

    edit_yaml(planted, second_keda)
    with pytest.raises(CatalogErrors) as raised:
        pipeline.build(root)
    clash = [str(e) for e in raised.value.errors if "prod-addon-keda-green" in str(e) and "collides" in str(e)]
    assert clash, [str(e) for e in raised.value.errors]
    assert "cell 'green'" in clash[0] and "environments/prod.yaml:" in clash[0]
