"""Tenant lifecycle after onboarding: template upgrades through copier's three-way update
(`update-tenants`) and offboarding (`remove-tenant`), in scratch repositories with history."""

from __future__ import annotations

import shutil
from pathlib import Path

import git as gitpython
import pytest
import yaml

from generator.lifecycle import new_tenant as new_tenant_lib
from generator.lifecycle import request as tenant_request
from generator.output import tree
from helpers.repo import snapshot
from helpers.tenants import git_state

TEMPLATE = Path("templates/tenant/tenants/{{ name }}.yaml.jinja")
CANARY_LINE = 'canary: {{ "true" if canary else "false" }}\n'


def manifest(root: Path) -> dict[str, dict]:
    return tree.read_manifest(root, own=False)


def commit_all(root: Path, message: str) -> str:
    repo = gitpython.Repo(root)
    repo.git.add("-A")
    repo.git.commit("-q", "-m", message)
    return repo.head.commit.hexsha


def change_template(root: Path, old: str, new: str) -> None:
    path = root / TEMPLATE
    text = path.read_text()
    assert old in text, "the test's anchor moved; update the test with the template"
    path.write_text(text.replace(old, new))


@pytest.fixture(scope="session")
def onboarded_template(git_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Once per session: a repository where `foo` was scaffolded and committed on its branch."""
    root = tmp_path_factory.mktemp("onboarded") / "repo"
    shutil.copytree(git_template, root, symlinks=True)
    request = tenant_request.TenantRequest("foo", "standard", "team-foo@example.com", "CC-4242")
    assert new_tenant_lib.new_tenant(root, request).branch == "tenant/foo"
    return root


@pytest.fixture
def onboarded(onboarded_template: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "repo"
    shutil.copytree(onboarded_template, dest, symlinks=True)
    return dest


def test_update_applies_template_change_and_keeps_hand_edit(onboarded, companyos):
    root = onboarded
    with (root / "tenants/foo.yaml").open("a") as fh:  # a hand edit, reviewed and committed
        fh.write("settings:\n  budget:\n    monthly_usd: 2500\n")
    assert companyos("render", cwd=root).code == 0
    commit_all(root, "foo: budget")
    change_template(root, "name: {{ name }}\n", "name: {{ name }}\n# Owner and cost center feed the mandatory tags.\n")
    head = commit_all(root, "template: explain the tags")

    res = companyos("update-tenants", cwd=root)
    assert res.code == 0, res.out + res.err
    assert "updated    foo" in res.out and "skipped    acme" in res.out

    text = (root / "tenants/foo.yaml").read_text()
    assert "# Owner and cost center feed the mandatory tags.\n" in text, "template change applied"
    assert yaml.safe_load(text)["settings"] == {"budget": {"monthly_usd": 2500}}, "hand edit kept"
    answers = yaml.safe_load((root / tenant_request.answers_path("foo")).read_text())
    assert answers["_commit"] == head and answers["owner"] == "team-foo@example.com"
    changed = sorted(line[3:] for line in gitpython.Repo(root).git.status("--porcelain").splitlines())
    # no rendered byte changes; only the unit manifests, which record the tenant file's
    # input hash and source lines (the comment moved them), follow the tenant file
    units = [p for p in changed if p.startswith("rendered/.companyos-units/")]
    assert [p for p in changed if p not in units] == ["tenants/.copier-answers/foo.yml", "tenants/foo.yaml"]
    assert "rendered/.companyos-units/tenant-foo.json" in units
    assert companyos("check", cwd=root).code == 0

    commit_all(root, "update tenants")
    before = snapshot(root)
    again = companyos("update-tenants", cwd=root)
    assert again.code == 0 and "up-to-date foo" in again.out
    assert snapshot(root) == before, "nothing to merge: nothing written"


def test_update_reports_conflicts_per_tenant_and_exits_nonzero(onboarded, companyos):
    root = onboarded
    text = (root / "tenants/foo.yaml").read_text()
    (root / "tenants/foo.yaml").write_text(text.replace("canary: false\n", "canary: true\n"))
    commit_all(root, "foo: canary")
    change_template(root, CANARY_LINE, CANARY_LINE.rstrip("\n") + "  # first progressive-sync wave\n")
    commit_all(root, "template: comment canary")
    manifest_before = manifest(root)

    res = companyos("update-tenants", cwd=root)
    assert res.code == 1, res.out + res.err
    assert "conflict   foo: tenants/foo.yaml has conflict markers" in res.err
    merged = (root / "tenants/foo.yaml").read_text()
    assert "<<<<<<< before updating" in merged and "canary: true" in merged and "# first progressive-sync wave" in merged
    assert manifest(root) == manifest_before, "no render over an unresolved tenant file"


def test_update_that_breaks_the_catalog_writes_nothing(onboarded, companyos):
    change_template(onboarded, "cost_center: {{ cost_center }}\n", "cost_centre: {{ cost_center }}\n")
    commit_all(onboarded, "template: a typo")
    before = snapshot(onboarded)
    res = companyos("update-tenants", cwd=onboarded)
    assert res.code == 2, res.out + res.err
    assert "breaks the catalog" in res.err and "tenants/foo.yaml" in res.err and "cost_centre" in res.err
    assert snapshot(onboarded) == before


def test_update_refuses_uncommitted_tenant_changes(onboarded, companyos):
    (onboarded / "tenants/foo.yaml").write_text((onboarded / "tenants/foo.yaml").read_text() + "# wip\n")
    before = snapshot(onboarded)
    res = companyos("update-tenants", cwd=onboarded)
    assert res.code == 2 and "uncommitted changes in tenants/foo.yaml" in res.err
    assert snapshot(onboarded) == before


def test_update_reports_a_version_missing_from_history(onboarded, companyos):
    answers = onboarded / tenant_request.answers_path("foo")
    answers.write_text(answers.read_text().replace(yaml.safe_load(answers.read_text())["_commit"], "deadbeef" * 5))
    commit_all(onboarded, "lose the version")
    res = companyos("update-tenants", "--tenant", "foo", cwd=onboarded)
    assert res.code == 2 and "error      foo: template version deadbeef" in res.err


def test_remove_tenant_prunes_exactly_its_files(git_repo, companyos):
    before = manifest(git_repo)
    before_files = snapshot(git_repo)
    own = {p for p, e in before.items() if e.get("tenant") == "globex"}
    assert own, "the sample tenant renders files"

    res = companyos("remove-tenant", "globex", cwd=git_repo)
    assert res.code == 0, res.err
    after = manifest(git_repo)
    assert set(before) - set(after) == own, "exactly globex's generated files left the manifest"
    assert set(after) <= set(before), "nothing new was generated"
    assert not any((git_repo / p).exists() for p in own) and not (git_repo / "tenants/globex.yaml").exists()
    survivors = snapshot(git_repo)
    for rel in after:  # every other tenant's files are byte-for-byte the same
        if after[rel].get("tenant") not in (None, "globex"):
            assert survivors[rel] == before_files[rel], rel
    assert "Nothing was destroyed" in res.out and "final snapshot" in res.out
    assert companyos("check", cwd=git_repo).code == 0


def test_remove_regulated_tenant_needs_acknowledgement(git_repo, companyos):
    before, git_before = snapshot(git_repo), git_state(git_repo)
    res = companyos("remove-tenant", "acme", cwd=git_repo)
    assert res.code == 2 and "--acknowledge-data-retention" in res.err and "nothing was written" in res.err
    assert snapshot(git_repo) == before and git_state(git_repo) == git_before

    res = companyos("remove-tenant", "acme", "--acknowledge-data-retention", cwd=git_repo)
    assert res.code == 0, res.err
    for account in ("210000000101", "310000000101", "410000000101"):
        assert f"close AWS account {account}" in res.out
    assert "retention: keep backups 35 days" in res.out and "compliance object lock" in res.out
    nets = (git_repo / "catalog/networks.yaml").read_text()
    assert "tenant-acme" not in nets and "tenant-umbrella" in nets, "only acme's allocations were released"
    assert "released tenant-acme" in res.out
    assert companyos("check", cwd=git_repo).code == 0


def test_remove_scaffolded_tenant_removes_answers(onboarded, companyos):
    res = companyos("remove-tenant", "foo", cwd=onboarded)
    assert res.code == 0, res.err
    assert not (onboarded / "tenants/foo.yaml").exists()
    assert not (onboarded / "tenants/.copier-answers").exists()
    assert f"removed   {tenant_request.answers_path('foo')}" in res.out


def test_remove_unknown_tenant(git_repo, companyos):
    before = snapshot(git_repo)
    res = companyos("remove-tenant", "nobody", cwd=git_repo)
    assert res.code == 2 and "unknown tenant 'nobody'" in res.err
    assert snapshot(git_repo) == before


def test_remove_render_failure_restores_the_tenant(git_repo, companyos, monkeypatch):
    from generator import pipeline

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "build", broken)
    before = snapshot(git_repo)
    res = companyos("remove-tenant", "globex", cwd=git_repo)
    assert res.code == 130 and "restored" in res.err
    monkeypatch.undo()
    assert snapshot(git_repo) == before
    shutil.rmtree(git_repo / ".git")  # and the same holds without git: remove needs no repository
    assert companyos("remove-tenant", "globex", cwd=git_repo).code == 0
