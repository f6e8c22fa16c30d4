"""Argo CD per cell: one ApplicationSet per cell reading the cell's per-tenant JSON files
with the git files generator, namespace Applications and AppProjects on the tenant's cell
cluster, controller shards per cell, and no file that lists the fleet.

The render of a scratch repository with two prod cells is parsed with real parsers and
validated against the vendored ApplicationSet/Application/AppProject CRD schemas.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path

import git
import pytest
import yaml

from generator import pipeline
from generator.ops.allocate import allocate
from helpers import k8s
from helpers.catalog_edit import edit_yaml, override
from helpers.repo import REPO as REPO_ROOT
from helpers.repo import copy_repo
from helpers.tenants import init_git
from helpers.yaml_docs import load_yaml_docs

REPO_URL = "https://github.com/companyos/platform-gitops.git"


@pytest.fixture(scope="module")
def celled(tmp_path_factory) -> pipeline.Build:
    """The sample with prod split into cells blue (the original cluster) and green."""
    root = copy_repo(tmp_path_factory.mktemp("cells") / "repo")
    edit_yaml(
        root / "environments/prod.yaml",
        lambda d: d.__setitem__("cells", [{"name": "blue", "max_tenants": 3}, {"name": "green", "max_tenants": 3}]),
    )
    allocate(root)
    return pipeline.build(root)


def docs(build: pipeline.Build, path: str) -> list[dict]:
    return load_yaml_docs(build.result.files[path])


def test_one_applicationset_per_cell_with_a_git_files_generator_valid_against_the_crd(celled):
    appsets = docs(celled, "rendered/argocd/prod/applicationsets.yaml")
    assert [a["metadata"]["name"] for a in appsets] == ["prod-services", "prod-services-green"]
    validator = k8s._crd_validator("ApplicationSet")
    for appset in appsets:
        assert [e.message for e in validator.iter_errors(appset)] == []
        [generator] = appset["spec"]["generators"]
        git = generator["git"]
        assert git["repoURL"] == REPO_URL and git["revision"] == "main"
        [pattern] = git["files"]
        cell = appset["metadata"]["labels"]["companyos.io/cell"]
        assert pattern["path"] == f"rendered/argocd/prod/cells/{cell}/*.json"
    # a validator that accepts anything would pass the loop above: a misspelt field must fail
    broken = json.loads(json.dumps(appsets[0]))
    broken["spec"]["generators"][0]["git"]["file"] = broken["spec"]["generators"][0]["git"].pop("files")
    assert list(validator.iter_errors(broken))


def test_each_cell_reads_exactly_its_tenants_files_and_deploys_to_its_cluster(celled):
    cells = yaml.safe_load((celled.root / "catalog/networks.yaml").read_text())["environments"]["prod"]["cells"]
    appsets = docs(celled, "rendered/argocd/prod/applicationsets.yaml")
    clusters = {"blue": "companyos-prod", "green": "companyos-prod-green"}
    seen: dict[str, str] = {}
    for appset in appsets:
        cell = appset["metadata"]["labels"]["companyos.io/cell"]
        pattern = appset["spec"]["generators"][0]["git"]["files"][0]["path"]
        matched = sorted(p for p in celled.result.files if fnmatch.fnmatchcase(p, pattern))
        assert matched, pattern
        for path in matched:
            tenant = Path(path).stem
            elements = json.loads(celled.result.files[path])
            assert isinstance(elements, list) and elements
            assert {e["tenant"] for e in elements} == {tenant}  # one tenant per file
            seen[tenant] = cell
        for params, app in k8s.generated_applications(appset, celled.result.files):
            assert app["spec"]["destination"]["name"] == clusters[cell]
            assert [e.message for e in k8s._crd_validator("Application").iter_errors(app)] == [], params["name"]
    assert seen == cells  # every recorded tenant is read by exactly its cell's ApplicationSet


def test_namespaces_and_projects_land_on_the_tenants_cell_cluster(celled):
    platform = docs(celled, "rendered/argocd/prod/platform.yaml")
    assert [d["kind"] for d in platform] == ["AppProject"]
    # one pattern per cell cluster (a standby cluster for disaster recovery may follow)
    assert platform[0]["spec"]["destinations"][:2] == [
        {"name": "companyos-prod", "namespace": "tenant-*"},
        {"name": "companyos-prod-green", "namespace": "tenant-*"},
    ]
    [ns_app] = docs(celled, "rendered/argocd/prod/tenants/umbrella.yaml")
    assert ns_app["kind"] == "Application" and ns_app["spec"]["destination"]["name"] == "companyos-prod-green"
    assert [e.message for e in k8s._crd_validator("Application").iter_errors(ns_app)] == []
    [project] = docs(celled, "rendered/argocd/prod/projects/umbrella.yaml")
    assert project["spec"]["destinations"][0] == {"name": "companyos-prod-green", "namespace": "tenant-umbrella"}
    assert "companyos-prod" not in {d["name"] for d in project["spec"]["destinations"]}
    [acme_project] = docs(celled, "rendered/argocd/prod/projects/acme.yaml")
    assert acme_project["spec"]["destinations"][0]["name"] == "companyos-prod"
    # the root Application applies the per-tenant namespace Applications
    boot = docs(celled, "rendered/argocd/prod/bootstrap.yaml")[1]
    include = boot["spec"]["source"]["directory"]["include"]
    assert "tenants/*.yaml" in k8s.brace_paths(include)


def test_controller_shards_follow_the_number_of_cells(celled, sample):
    values = yaml.safe_load(celled.result.files["rendered/argocd/prod/controller-values.yaml"])
    assert values["controller"]["replicas"] == 2
    assert values["configs"]["params"]["controller.sharding.algorithm"] == "round-robin"
    single = yaml.safe_load(sample.result.files["rendered/argocd/dev/controller-values.yaml"])
    assert single["controller"]["replicas"] == 1


def test_adding_or_editing_a_tenant_changes_no_other_argocd_file_or_workflow(tmp_path):
    """The files of the argocd and workflows targets (other targets have their own tests)."""
    root = copy_repo(tmp_path / "repo")

    def render() -> dict[str, bytes]:
        result = pipeline.build(root).result
        return {p: data for p, data in result.files.items() if (result.entry(p) or {}).get("target") in ("argocd", "workflows")}

    before = render()
    shutil.copy(root / "tenants/globex.yaml", root / "tenants/newco.yaml")
    edit_yaml(root / "tenants/newco.yaml", lambda d: d.__setitem__("name", "newco"))
    added = render()
    changed = sorted(p for p in before if p in added and added[p] != before[p])
    assert changed == []
    new = sorted(p for p in added if p not in before)
    assert new and all("newco" in p for p in new), new
    assert "rendered/argocd/dev/cells/main/newco.json" in new
    # an edit of one tenant touches only that tenant's files
    edit_yaml(root / "tenants/newco.yaml", lambda d: d.__setitem__("canary", not d.get("canary", False)))
    edited = render()
    touched = sorted(p for p in added if edited.get(p) != added[p])
    assert touched and all("newco" in p for p in touched), touched


def merge_four_branches(tmp_path: Path, companyos) -> tuple[Path, dict[str, list[str]]]:
    """Two new-tenant branches and two tenant-edit branches made from one main, each
    rendered and committed, then merged into main with plain ``git merge``: the repository
    and the files that conflicted per branch (a conflicting merge is aborted)."""
    root = copy_repo(tmp_path / "repo")
    shutil.copy(REPO_ROOT / ".gitignore", root / ".gitignore")  # the local check cache is never committed
    assert companyos("render", cwd=root).code == 0
    repo = init_git(root)

    def branch(name: str, change) -> None:
        repo.git.checkout("-q", "-b", name, "main")
        change()
        result = companyos("render", cwd=root)
        assert result.code == 0, result.err
        repo.git.add("-A")
        repo.git.commit("-q", "-m", name)

    def onboard(tenant: str):
        def change() -> None:
            shutil.copy(root / "tenants/globex.yaml", root / f"tenants/{tenant}.yaml")
            edit_yaml(root / f"tenants/{tenant}.yaml", lambda d: d.__setitem__("name", tenant))

        return change

    def edit(tenant: str, service: str):
        def change() -> None:
            override(root, tenant, "stage", {"services": {service: {"replicas": 4}}})

        return change

    branch("onboard-newco", onboard("newco"))
    branch("onboard-oldco", onboard("oldco"))
    branch("edit-globex", edit("globex", "api"))
    branch("edit-initech", edit("initech", "worker"))
    repo.git.checkout("-q", "main")
    conflicts: dict[str, list[str]] = {}
    for name in ("onboard-newco", "onboard-oldco", "edit-globex", "edit-initech"):
        try:
            repo.git.merge("--no-edit", "-q", name)
        except git.GitCommandError:
            conflicts[name] = repo.git.diff("--name-only", "--diff-filter=U").splitlines()
            repo.git.merge("--abort")
    return root, conflicts


def test_parallel_branches_never_conflict_in_argocd_or_workflow_files(tmp_path, companyos):
    root, conflicts = merge_four_branches(tmp_path, companyos)
    result = pipeline.build(root).result
    mine = {p for p in result.files if (result.entry(p) or {}).get("target") in ("argocd", "workflows")}
    assert {name: sorted(set(files) & mine) for name, files in conflicts.items() if set(files) & mine} == {}


def test_parallel_onboarding_and_edit_branches_merge_without_conflicts(tmp_path, companyos):
    """Two new-tenant branches and two tenant-edit branches made from one main merge with
    plain ``git merge`` (no conflict in any rendered file) and the result passes ``check``."""
    root, conflicts = merge_four_branches(tmp_path, companyos)
    assert conflicts == {}, json.dumps(conflicts, indent=1)
    for tenant in ("newco", "oldco"):
        assert (root / f"rendered/argocd/dev/cells/main/{tenant}.json").is_file()
    result = companyos("check", cwd=root)
    assert result.code == 0, result.out + result.err
