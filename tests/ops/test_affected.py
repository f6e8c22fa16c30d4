"""`companyos affected`: what a change touches, from the manifest at a git ref versus the
working tree -- exercised in real temporary git repositories."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest

from generator.git import scratch_repo
from generator.model import naming
from generator.ops.affected import FileChange, diff_manifests
from generator.output import tree
from helpers.catalog_edit import edit_yaml
from helpers.repo import REPO, copy_repo


def init(root: Path) -> git.Repo:
    return scratch_repo(root)  # fixed identity, no signing, no hooks


def commit(repo: git.Repo, message: str, *paths: str) -> str:
    repo.git.add(*(paths or ("-A",)))
    repo.git.commit("-q", "-m", message)
    return repo.head.commit.hexsha


@pytest.fixture
def gitrepo(tmp_path: Path) -> tuple[Path, git.Repo]:
    """A scratch copy of the repository, committed once (rendered tree included)."""
    root = copy_repo(tmp_path / "repo")
    repo = init(root)
    commit(repo, "base")
    return root, repo


def affected_json(companyos, root: Path, *args: str) -> dict:
    result = companyos("affected", "--base", "HEAD", "--format", "json", *args, cwd=root)
    assert result.code == 0, result.err
    assert result.out.count("\n") == 1, "one line, for $GITHUB_OUTPUT"
    return json.loads(result.out)


def test_one_tenant_change_reports_exactly_its_environment_and_root(gitrepo, companyos):
    root, _ = gitrepo
    edit_yaml(root / "tenants/acme.yaml", lambda d: d["overrides"]["prod"]["database"].__setitem__("instance_class", "db.r6g.2xlarge"))
    assert companyos("render", "-q", cwd=root).code == 0
    out = affected_json(companyos, root)
    tenant_root = naming.terraform_root_dir("prod", naming.tenant_root("acme"))
    assert out["tenants"] == ["acme"]
    assert out["environments"] == ["prod"]
    assert out["roots"] == [tenant_root]
    assert out["count"] == 1 and out["removed_roots"] == []
    (row,) = out["include"]
    assert row == {
        "root": tenant_root,
        "environment": "prod",
        "name": "tenant-acme",
        "id": "prod-tenant-acme",
        "account_id": "410000000101",
        "role_arn": "arn:aws:iam::410000000101:role/companyos-terraform",
        "region": "eu-west-1",
    }
    assert out["files"]["changed"] >= 1 and out["files"]["added"] == out["files"]["removed"] == 0
    # One apply stage at a time: only prod has work.
    assert affected_json(companyos, root, "--env", "dev")["count"] == 0
    assert affected_json(companyos, root, "--env", "prod")["roots"] == [tenant_root]
    summary = companyos("affected", "--base", "HEAD", "--format", "markdown", cwd=root)
    assert summary.code == 0 and "| prod | acme |" in summary.out and f"`{tenant_root}`" in summary.out


def test_nothing_changed_means_an_empty_matrix(gitrepo, companyos):
    root, _ = gitrepo
    out = affected_json(companyos, root)
    assert out["count"] == 0 and out["include"] == [] and out["tenants"] == [] and out["files"] == {"added": 0, "changed": 0, "removed": 0}


def test_a_removed_tenant_reports_its_roots_as_removed_not_planned(gitrepo, companyos):
    root, _ = gitrepo
    (root / "tenants/initech.yaml").unlink()
    result = companyos("render", "-q", cwd=root)
    assert result.code == 0, result.err
    out = affected_json(companyos, root)
    gone = [naming.terraform_root_dir(env, naming.tenant_root("initech")) for env in ("dev", "stage", "prod")]
    assert sorted(out["removed_roots"]) == sorted(gone)
    assert not set(gone) & set(out["roots"])
    assert "initech" in out["tenants"] and "acme" not in out["tenants"]
    assert out["files"]["removed"] > 0


def test_an_older_base_without_a_manifest_reports_everything_added(tmp_path: Path, companyos):
    root = copy_repo(tmp_path / "repo")
    repo = init(root)
    (root / "README").write_text("before the first render\n", encoding="utf-8")
    base = commit(repo, "empty", "README")
    result = companyos("affected", "--base", base, "--format", "json", cwd=root)
    assert result.code == 0, result.err
    out = json.loads(result.out)
    manifest = tree.read_manifest(root, own=False)
    assert out["files"]["added"] == len(manifest)
    assert out["count"] == len({e["root"] for e in manifest.values() if e.get("root")})


def test_changed_migrations_are_reported_per_service(gitrepo, companyos, sample):
    root, _ = gitrepo
    path = sample.model.services["api"].migrations.path
    (root / path).mkdir(parents=True)
    (root / path / "0042_add_index.sql").write_text("create index ...;\n", encoding="utf-8")
    assert affected_json(companyos, root)["migrations"] == ["api"]


def test_unknown_ref_is_a_usage_error(gitrepo, companyos):
    root, _ = gitrepo
    result = companyos("affected", "--base", "no-such-branch", cwd=root)
    assert result.code == 2
    assert "git ref 'no-such-branch' does not exist" in result.err and "Traceback" not in result.err


def test_outside_a_git_repository_is_a_usage_error(repo, companyos):
    result = companyos("affected", "--base", "HEAD", cwd=repo)
    assert result.code == 2
    assert "not inside a git repository" in result.err


def test_roots_lists_every_root_with_shared_first(sample, companyos):
    result = companyos("roots", "--format", "json", cwd=REPO)
    assert result.code == 0, result.err
    out = json.loads(result.out)
    manifest_roots = {e["root"] for e in sample.result.manifest["files"].values() if e.get("root")}
    assert set(out["roots"]) == manifest_roots and out["count"] == len(manifest_roots)
    envs = [e.name for e in sample.model.environments]
    first_of_each = [
        next(r for r in out["include"] if r["environment"] == env) for env in envs if any(r["environment"] == env for r in out["include"])
    ]
    assert all(r["name"] == naming.SHARED_ROOT for r in first_of_each)
    assert [envs.index(r["environment"]) for r in out["include"]] == sorted(envs.index(r["environment"]) for r in out["include"])


def test_the_drift_matrix_makes_each_environments_accounts_once(sample, monkeypatch):
    """Made per root, the account map was a pass over every tenant per root (466 s for the
    drift matrix at 10,000 tenants x 3): once per environment, the same roots and accounts."""
    from generator.ops import affected as lib

    roots = lib.working_roots(REPO)
    one_by_one = [lib.root_info(sample.model, r) for r in sorted(roots)]  # each its own map
    made: list[str] = []
    real = lib.environment_accounts
    monkeypatch.setattr(lib, "environment_accounts", lambda model, env: made.append(env) or real(model, env))
    listed = lib.all_roots(sample.model, roots)
    assert sorted(made) == sorted({r.environment for r in listed}) == sorted(e.name for e in sample.model.environments)
    assert sorted(listed, key=lambda r: r.root) == one_by_one


def test_roots_without_a_render_is_a_usage_error(repo, companyos):
    for manifest in (repo / tree.UNITS_DIR).glob("*.json"):
        manifest.unlink()
    result = companyos("roots", cwd=repo)
    assert result.code == 2 and "run `companyos render` first" in result.err


def test_diff_manifests_compares_sha256_per_file():
    old = {"a": {"sha256": "1", "tenant": "t1", "environment": "dev"}, "b": {"sha256": "2"}, "c": {"sha256": "3", "root": "r"}}
    new = {"a": {"sha256": "1", "tenant": "t1", "environment": "dev"}, "b": {"sha256": "9"}, "d": {"sha256": "4", "tenant": "t2"}}
    assert diff_manifests(old, new) == [
        FileChange("b", "changed"),
        FileChange("c", "removed", root="r"),
        FileChange("d", "added", tenant="t2"),
    ]


def test_shards_partition_the_roots(sample, companyos):
    full = json.loads(companyos("roots", "--format", "json", cwd=REPO).out)["roots"]
    parts = [json.loads(companyos("roots", "--format", "json", "--shard", f"{k}/3", cwd=REPO).out)["roots"] for k in (1, 2, 3)]
    assert sorted(r for part in parts for r in part) == sorted(full)
    assert all(len(part) <= -(-len(full) // 3) for part in parts)
    assert companyos("roots", "--shard", "0/3", cwd=REPO).code == 2


def _full_answer(root: Path, repo: git.Repo) -> tuple[list[FileChange], set[str], list[str]]:
    """The comparison over every unit manifest on both sides (the oracle)."""
    from generator.ops import affected as lib

    old, new = lib.manifest_at(repo, repo.head.commit, root), lib.working_manifest(root)
    changes = diff_manifests(old, new)
    touched = {c.root for c in changes if c.root}
    live = tree.manifest_roots(new)
    return changes, touched & live, sorted(touched - live)


@pytest.mark.parametrize("edit", ["one tenant", "tenant removed", "tenant added, untracked"])
def test_only_the_unit_manifests_that_differ_are_read_and_the_answer_is_the_full_comparisons(gitrepo, companyos, monkeypatch, edit):
    """At 10,000 tenants x 3 decoding every unit manifest on both sides was most of 37 s and
    3 GB: only those whose bytes differ from the base's are read, with the same answer."""
    from generator.ops import affected as lib

    root, repo = gitrepo
    if edit == "one tenant":
        edit_yaml(root / "tenants/acme.yaml", lambda d: d["overrides"]["prod"]["database"].__setitem__("instance_class", "db.r6g.2xlarge"))
    elif edit == "tenant removed":
        (root / "tenants/initech.yaml").unlink()
    else:
        text = (root / "tenants/globex.yaml").read_text().replace("globex", "newco")
        (root / "tenants/newco.yaml").write_text(text)
    result = companyos("render", "-q", cwd=root)
    assert result.code == 0, result.err
    changes, live, removed = _full_answer(root, repo)
    read: list[str] = []
    real_file, real_blob = lib.read_file, lib.read_blob
    monkeypatch.setattr(lib, "read_file", lambda path, *a: read.append(Path(path).name) or real_file(path, *a))
    monkeypatch.setattr(lib, "read_blob", lambda r, sha: read.append(sha) or real_blob(r, sha))
    real_roots = lib.working_roots
    monkeypatch.setattr(lib, "working_roots", lambda r: read.append("every manifest") or real_roots(r))
    found = lib.affected(root, "HEAD", lib_model(root))
    assert found.changes == changes
    assert sorted(r.root for r in found.roots) == sorted(live) and found.removed_roots == removed
    differing = {p.rpartition("/")[2] for p in lib.changed_paths(repo, repo.head.commit, root, [tree.UNITS_DIR])}
    # a removed tenant's roots are named by no changed unit: confirmed gone against every manifest
    assert ("every manifest" in read) == (edit == "tenant removed")
    assert {name for name in read if name.endswith(".json")} <= differing
    assert len(differing) < 6  # the global unit and the tenant's, not the fleet's


def lib_model(root: Path):
    from generator import pipeline

    return pipeline.resolve_only(root)


def test_a_working_tree_without_a_render_is_a_usage_error(gitrepo, companyos):
    root, _ = gitrepo
    for manifest in (root / tree.UNITS_DIR).glob("*.json"):
        manifest.unlink()
    result = companyos("affected", "--base", "HEAD", "--format", "json", cwd=root)
    assert result.code == 2 and "run `companyos render` first" in result.err and "Traceback" not in result.err
