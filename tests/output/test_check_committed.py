"""``check --base REF --committed`` (output/head_status.py): HEAD's commit is checked from
git's objects, never the output files on disk, and nothing the pull request committed or
left in the working tree can make a stale commit pass (docs/incremental.md)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import git
import pytest

from generator import pipeline
from generator.catalog import snapshot
from generator.errors import UsageError
from generator.output import tree, units
from helpers.baseline import check_base, edit_tenant, forge, rendered_base
from helpers.gitrepo import commit_all
from helpers.repo import copy_repo

HOOLI_FILE = "rendered/helm/prod/hooli/api.yaml"
CODE = units.code_digest()


@pytest.fixture(autouse=True)
def _fixed_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(units, "code_digest", lambda: CODE)


@pytest.fixture(scope="module")
def _base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rendered_base(tmp_path_factory.mktemp("committed") / "repo", CODE)


@pytest.fixture
def repo(_base: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(_base, tmp_path / "repo", symlinks=True))


def _edit_hooli(repo: Path) -> None:
    edit_tenant(repo)


def _status(repo: Path, ref: str) -> tree.TreeStatus:
    with snapshot.at(repo, ref, head=True) as base:
        return pipeline.check(repo, full=False, base=base)[1]


def test_the_commit_is_checked_not_the_files_on_disk(repo: Path) -> None:
    """An output edit left uncommitted is not the commit's; one committed and then undone on
    disk is, and fails although the files on disk match the catalog."""
    (repo / HOOLI_FILE).write_bytes((repo / HOOLI_FILE).read_bytes() + b"# uncommitted\n")
    assert check_base(repo, "HEAD", committed=True)[2]
    assert not check_base(repo, "HEAD")[2]  # the working tree's check sees it
    commit_all(repo, "forged output")
    original = (repo / HOOLI_FILE).read_bytes().replace(b"# uncommitted\n", b"")
    (repo / HOOLI_FILE).write_bytes(original)  # the disk matches the catalog again, the commit does not
    _, _, clean, problems = check_base(repo, "HEAD~1", committed=True)
    assert not clean and problems == [HOOLI_FILE]
    assert check_base(repo, "HEAD~1")[2]


def test_a_manifest_forged_in_the_working_tree_does_not_vouch_for_a_stale_commit(repo: Path) -> None:
    """The pull request commits a tenant's input change without rendering it, then (in the
    checkout, uncommitted) records the new inputs digest in the tenant's unit manifest: the
    plan's unhashed read of the working tree's manifests must not take it."""
    _edit_hooli(repo)
    commit_all(repo, "input changed, not rendered")
    new_inputs = units.digests(repo, pipeline.resolve_only(repo)).tenants["hooli"]
    manifest = repo / units.unit_path("tenant/hooli")
    old_inputs = units.parse_unit(manifest.read_bytes())
    assert old_inputs is not None and old_inputs.inputs != new_inputs
    manifest.write_text(manifest.read_text().replace(old_inputs.inputs, new_inputs))
    _, plan, clean, problems = check_base(repo, "HEAD~1", committed=True)
    assert plan.render == {"hooli"} and not clean
    assert HOOLI_FILE in problems or any(p.startswith("rendered/terraform/") and "hooli" in p for p in problems), problems


def test_files_the_commit_adds_removes_or_links_are_reported(repo: Path) -> None:
    """Unmanaged, left-over, stale (a removed tenant's files and manifest) and a link in place
    of a rendered file, all committed."""
    (repo / "rendered/helm/prod/extra.yaml").write_text("planted: true\n")
    (repo / f"rendered/helm/prod/acme/api.yaml{tree.TMP_SUFFIX}").write_text("half\n")
    (repo / "tenants/hooli.yaml").unlink()
    linked = repo / "rendered/helm/prod/globex/api.yaml"
    target = linked.read_bytes()
    linked.unlink()
    (repo / "elsewhere.yaml").write_bytes(target)
    os.symlink("../../../../elsewhere.yaml", linked)
    commit_all(repo, "planted")
    st = _status(repo, "HEAD~1")
    assert st.unmanaged == ["rendered/helm/prod/extra.yaml"]
    assert st.leftover == [f"rendered/helm/prod/acme/api.yaml{tree.TMP_SUFFIX}"]
    assert "rendered/helm/prod/globex/api.yaml" in st.changed
    assert units.unit_path("tenant/hooli") in st.stale
    assert HOOLI_FILE in st.stale
    assert all("hooli" in p for p in st.stale), st.stale


def test_a_file_the_commit_deletes_is_missing(repo: Path) -> None:
    (repo / HOOLI_FILE).unlink()
    commit_all(repo, "deleted")
    st = _status(repo, "HEAD~1")
    assert st.missing == [HOOLI_FILE] and not st.changed and not st.stale


def test_an_honest_commit_renders_only_its_tenant_and_reads_no_output_file_from_disk(repo: Path, monkeypatch) -> None:
    _edit_hooli(repo)
    pipeline.render_to_disk(repo)
    commit_all(repo, "edit hooli")
    read: list[str] = []
    real = tree.read_file
    monkeypatch.setattr(tree, "read_file", lambda path, limit=-1: read.append(os.fspath(path)) or real(path, limit))
    monkeypatch.setattr(units, "read_file", lambda path, limit=-1: read.append(os.fspath(path)) or real(path, limit))
    _, plan, clean, problems = check_base(repo, "HEAD~1", committed=True)
    assert clean, problems
    assert plan.render == {"hooli"} and "hooli" not in plan.reused
    assert not [p for p in read if "/rendered/" in p or "/.github/" in p], read


def test_cli_committed(repo: Path, companyos) -> None:
    """Exit 1 with the diff taken from HEAD's bytes; exit 2 for an uncommitted catalog change
    or a tenant file git does not track, and for --committed without --base."""
    forge(repo, HOOLI_FILE, (repo / HOOLI_FILE).read_bytes() + b"# forged\n", "tenant/hooli")
    commit_all(repo, "forged")
    original = (repo / HOOLI_FILE).read_bytes().replace(b"# forged\n", b"")
    (repo / HOOLI_FILE).write_bytes(original)
    result = companyos("check", "--base", "HEAD~1", "--committed", cwd=repo)
    assert result.code == 1 and HOOLI_FILE in result.out and "-# forged" in result.out
    assert companyos("check", "--committed", cwd=repo).code == 2
    _edit_hooli(repo)
    refused = companyos("check", "--base", "HEAD~1", "--committed", cwd=repo)
    assert refused.code == 2 and "tenants/hooli.yaml" in refused.err and "Traceback" not in refused.err
    (repo / "tenants/hooli.yaml").write_bytes(b"not: [a tenant")  # the catalog error is not the root cause
    assert "tenants/hooli.yaml" in companyos("check", "--base", "HEAD~1", "--committed", cwd=repo).err.splitlines()[0]
    git.Repo(repo).git.checkout("--", "tenants/hooli.yaml")
    shutil.copy(repo / "tenants/globex.yaml", repo / "tenants/newco.yaml")
    untracked = companyos("check", "--base", "HEAD~1", "--committed", cwd=repo)
    assert untracked.code == 2 and "tenants/newco.yaml" in untracked.err


def test_a_reused_file_asked_for_is_the_commits_not_the_disks(repo: Path) -> None:
    """The destruction report or a diff may ask for a reused unit's file: with --committed it
    is read as the base's blob (checked by blob id), not from the working tree."""
    globex = "rendered/helm/prod/globex/api.yaml"
    committed_bytes = (repo / globex).read_bytes()
    (repo / globex).write_bytes(committed_bytes + b"# on disk only\n")
    with snapshot.at(repo, "HEAD", head=True) as base:
        built, plan = pipeline.build_incremental(repo, base)
        assert "globex" in plan.reused
        assert built.result.files[globex] == committed_bytes


def test_a_new_tenants_file_the_commit_lacks_is_missing(repo: Path, companyos) -> None:
    """A path neither the base nor HEAD has (the base lists it nowhere): asked of git, missing."""
    from helpers.tenants import OWNER

    assert companyos("new-tenant", "newco", "--tier", "standard", *OWNER, "--no-input", cwd=repo).code == 0
    repo_git = git.Repo(repo)
    assert repo_git.active_branch.name == "tenant/newco"
    lacking = "rendered/helm/prod/newco/api.yaml"
    repo_git.git.rm("-q", lacking)
    repo_git.git.commit("-q", "-m", "one file lost")
    st = _status(repo, "HEAD~2")
    assert st.missing == [lacking] and not st.changed and not st.stale and not st.unmanaged


def test_a_catalog_in_a_subfolder_of_the_repository(tmp_path: Path) -> None:
    """git names paths from the repository's top: the catalog's folder is stripped from what
    diff-tree and git status list, and added to what is asked of them."""
    mono = tmp_path / "mono"
    root = copy_repo(mono / "platform")
    (mono / "README").write_text("the platform lives in platform/\n")
    pipeline.render_to_disk(root, full=True)
    commit_all(mono, "base")
    _edit_hooli(root)
    pipeline.render_to_disk(root)
    commit_all(mono, "edit hooli")
    _, plan, clean, problems = check_base(root, "HEAD~1", committed=True)
    assert clean and plan.render == {"hooli"}, problems
    (root / HOOLI_FILE).write_bytes((root / HOOLI_FILE).read_bytes() + b"# forged\n")
    (root / "rendered/helm/prod/extra.yaml").write_text("planted: true\n")
    commit_all(mono, "forged")
    st = _status(root, "HEAD~1")
    assert st.changed == [HOOLI_FILE] and st.unmanaged == ["rendered/helm/prod/extra.yaml"]
    hooli = root / "tenants/hooli.yaml"
    hooli.write_text(hooli.read_text().replace("monthly_usd: 2600", "monthly_usd: 2700"))  # uncommitted, under the subfolder
    with pytest.raises(UsageError, match=r"tenants/hooli\.yaml"):
        _status(root, "HEAD~1")
