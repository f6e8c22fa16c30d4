"""`companyos new-tenant`: scaffold through copier, allocate, render, branch + commit; and
every refusal leaves the repository byte-for-byte and branch-for-branch as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

import git as gitpython
import pytest
import yaml

from generator import pipeline
from generator.catalog import spec
from generator.errors import UsageError
from generator.lifecycle import new_tenant as new_tenant_lib
from generator.lifecycle import request as tenant_request
from generator.lifecycle import template as tenant_template
from generator.model.resolve import promotion_order
from generator.output import tree, units
from helpers.repo import REPO, snapshot
from helpers.tenants import OWNER, git_state


def manifest(root: Path) -> dict[str, dict]:
    return tree.read_manifest(root, own=False)


def facts() -> tenant_request.CatalogFacts:
    return tenant_request.CatalogFacts.of(pipeline.load(REPO))


def test_new_tenant_creates_files_branch_and_one_commit(git_repo, companyos):
    base = gitpython.Repo(git_repo).head.commit.hexsha
    res = companyos("new-tenant", "foo", "--tier", "standard", *OWNER, "--no-input", cwd=git_repo)
    assert res.code == 0, res.err

    tenant = yaml.safe_load((git_repo / "tenants/foo.yaml").read_text())
    spec.Tenant.model_validate(tenant)
    catalog = pipeline.load(git_repo)
    envs = {n: e.spec for n, e in catalog.environments.items()}
    assert tenant["environments"] == promotion_order(envs), "default: every environment, in promotion order"
    assert sorted(tenant["services"]) == sorted(catalog.services), "default: every service"
    assert (tenant["tier"], tenant["owner"], tenant["cost_center"]) == ("standard", "team-foo@example.com", "CC-4242")
    answers = yaml.safe_load((git_repo / tenant_request.answers_path("foo")).read_text())
    assert answers["_commit"] == base and answers["_src_path"] == "templates/tenant"

    repo = gitpython.Repo(git_repo)
    assert repo.active_branch.name == "tenant/foo"
    head = repo.head.commit
    assert [p.hexsha for p in head.parents] == [base] and head.summary == "Add tenant foo (standard tier)"
    assert not repo.is_dirty(untracked_files=True), "the commit holds everything the command wrote"
    committed = {d.b_path or d.a_path for d in head.parents[0].diff(head)}
    outputs = {p for p, e in manifest(git_repo).items() if e.get("tenant") == "foo"}
    assert outputs and outputs <= committed
    assert {"tenants/foo.yaml", tenant_request.answers_path("foo"), units.unit_path("tenant/foo")} <= committed
    assert all(p.startswith(("tenants/", "rendered/", ".github/", "catalog/networks.yaml")) for p in committed)
    assert "git push -u origin tenant/foo" in res.out
    assert gitpython.Repo(git_repo).heads["main"].commit.hexsha == base, "main is untouched"

    check = companyos("check", cwd=git_repo)
    assert check.code == 0, check.out + check.err


def test_dedicated_tenant_gets_accounts_and_network_allocations(git_repo, companyos):
    res = companyos(
        "new-tenant",
        "bank",
        "--tier",
        "regulated",
        *OWNER,
        "--environments",
        "prod,stage",
        "--services",
        "api",
        "--account",
        "prod=620000000001",
        "--account",
        "stage=520000000001",
        "--canary",
        "--no-input",
        cwd=git_repo,
    )
    assert res.code == 0, res.err
    tenant = yaml.safe_load((git_repo / "tenants/bank.yaml").read_text())
    assert tenant["environments"] == ["stage", "prod"], "reordered into promotion order"
    assert tenant["accounts"] == {"stage": "520000000001", "prod": "620000000001"}
    assert tenant["canary"] is True
    nets = yaml.safe_load((git_repo / "catalog/networks.yaml").read_text())["environments"]
    assert "tenant-bank" in nets["stage"]["vpcs"] and "tenant-bank" in nets["prod"]["vpcs"]
    assert "tenant-bank" not in nets["dev"]["vpcs"]
    head = gitpython.Repo(git_repo).head.commit
    assert "catalog/networks.yaml" in {d.b_path for d in head.parents[0].diff(head)}
    assert "allocated" in res.out and "tenant-bank" in res.out
    assert companyos("check", cwd=git_repo).code == 0


def _dirty_catalog(root: Path) -> None:
    with (root / "catalog/services/api.yaml").open("a") as fh:
        fh.write("# unfinished edit\n")


def _untracked_rendered(root: Path) -> None:
    (root / "rendered/notes.txt").write_text("scratch\n")


def _no_git(root: Path) -> None:
    shutil.rmtree(root / ".git")


def _branch_exists(root: Path) -> None:
    gitpython.Repo(root).git.branch("tenant/foo")


REFUSALS = {
    "tenant exists": (["acme", "--tier", "standard"], None, "tenant 'acme' already exists"),
    "invalid name": (["Foo_1", "--tier", "standard"], None, "'Foo_1' is not a valid tenant name"),
    "name too long": (["a" * 21, "--tier", "standard"], None, "is not a valid tenant name"),
    "unknown tier": (["foo", "--tier", "gold"], None, "unknown tier 'gold' (known tiers: regulated, standard)"),
    "unknown service": (["foo", "--tier", "standard", "--services", "api,mailer"], None, "unknown service 'mailer'"),
    "unknown environment": (["foo", "--tier", "standard", "--environments", "dev,qa"], None, "unknown environment 'qa'"),
    "missing owner": (["foo", "--tier", "standard", "--cost-center", "CC-4242"], None, "missing --owner"),
    "account on pooled tier": (["foo", "--tier", "standard", "--account", "dev=123456789012"], None, "is pooled"),
    "dirty catalog": (["foo", "--tier", "standard"], _dirty_catalog, "uncommitted changes in catalog/services/api.yaml"),
    "untracked rendered file": (["foo", "--tier", "standard"], _untracked_rendered, "uncommitted changes in rendered/notes.txt"),
    "branch exists": (["foo", "--tier", "standard"], _branch_exists, "branch 'tenant/foo' already exists"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_write_nothing_and_make_no_branch(case, git_repo, companyos):
    args, prepare, message = REFUSALS[case]
    if prepare:
        prepare(git_repo)
    if "--cost-center" not in args:
        args = [*args, *OWNER]
    before, git_before = snapshot(git_repo), git_state(git_repo)
    res = companyos("new-tenant", *args, "--no-input", cwd=git_repo)
    assert res.code == 2, res.out + res.err
    assert message in res.err
    assert "nothing was written" in res.err
    assert "Traceback" not in res.err
    assert snapshot(git_repo) == before
    assert git_state(git_repo) == git_before


def test_not_a_git_repository_is_refused_unless_no_commit(repo, companyos):
    before = snapshot(repo)
    res = companyos("new-tenant", "foo", "--tier", "standard", *OWNER, "--no-input", cwd=repo)
    assert res.code == 2 and "not inside a git repository" in res.err and "--no-commit" in res.err
    assert snapshot(repo) == before and not (repo / ".git").exists()

    res = companyos("new-tenant", "foo", "--tier", "standard", *OWNER, "--no-input", "--no-commit", cwd=repo)
    assert res.code == 0, res.err
    assert (repo / "tenants/foo.yaml").is_file()
    assert "_commit" not in yaml.safe_load((repo / tenant_request.answers_path("foo")).read_text())
    assert companyos("check", cwd=repo).code == 0


def test_allow_dirty_commits_only_the_tenant(git_repo, companyos):
    _dirty_catalog(git_repo)
    repo = gitpython.Repo(git_repo)
    repo.git.add("catalog/services/api.yaml")  # even a staged change stays out of the commit
    res = companyos("new-tenant", "foo", "--tier", "standard", *OWNER, "--no-input", "--allow-dirty", cwd=git_repo)
    assert res.code == 0, res.err
    head = repo.head.commit
    committed = {d.b_path for d in head.parents[0].diff(head)}
    assert "catalog/services/api.yaml" not in committed and "tenants/foo.yaml" in committed
    assert repo.git.status("--porcelain") == "M  catalog/services/api.yaml", "the user's staged edit is still staged"


def test_render_error_rolls_everything_back(git_repo, companyos):
    """The account is acme's: only the full catalog check, after the files are in place, sees it."""
    before, git_before = snapshot(git_repo), git_state(git_repo)
    res = companyos(
        "new-tenant",
        "bank",
        "--tier",
        "regulated",
        *OWNER,
        "--environments",
        "dev",
        "--account",
        "dev=210000000101",
        "--no-input",
        cwd=git_repo,
    )
    assert res.code == 2
    assert "tenants/bank.yaml" in res.err and "already used by" in res.err
    assert snapshot(git_repo) == before
    assert git_state(git_repo) == git_before
    assert not (git_repo / "tenants/.copier-answers").exists()


def test_interrupt_while_writing_the_tree_rolls_back(git_repo, companyos, monkeypatch):
    import os

    real_replace, calls = os.replace, []

    def interrupted_replace(src, dst):
        calls.append(dst)
        # a new tenant's rendered files are created in place (no rename), so interrupt the tree
        # write at its commit point: every new file is on disk, the journal not yet committed
        if str(dst).endswith("journal-done.json") and not any(str(c).endswith("journal-done.json") for c in calls[:-1]):
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupted_replace)
    before, git_before = snapshot(git_repo), git_state(git_repo)
    res = companyos("new-tenant", "foo", "--tier", "standard", *OWNER, "--no-input", cwd=git_repo)
    assert res.code == 130 and "interrupted" in res.err
    # the rollback restores files through write_atomic too, so more replaces follow the 6th
    assert len(calls) >= 4 and str(calls[3]).endswith("journal-done.json"), "the interrupt hit the tree write"
    monkeypatch.undo()
    assert snapshot(git_repo) == before, "no half-written tenant, no temporary files"
    assert git_state(git_repo) == git_before


def test_interrupt_while_switching_branch_removes_the_branch(git_repo, companyos, monkeypatch):
    from generator import git

    real, raised = git.run_git, []

    def flaky(repo, *args, **kwargs):
        if args[:1] == ("symbolic-ref",) and not raised:  # the branch exists; HEAD is moving to it
            raised.append(args)
            raise KeyboardInterrupt
        return real(repo, *args, **kwargs)

    monkeypatch.setattr(git, "run_git", flaky)
    before, git_before = snapshot(git_repo), git_state(git_repo)
    res = companyos("new-tenant", "foo", "--tier", "standard", *OWNER, "--no-input", cwd=git_repo)
    assert res.code == 130 and raised and "Traceback" not in res.err
    monkeypatch.undo()
    assert snapshot(git_repo) == before
    assert git_state(git_repo) == git_before


def test_interactive_prompts_ask_only_for_missing_answers(git_repo, monkeypatch):
    """copier asks (through questionary) for what no flag gave; typed answers are checked too."""
    import copier._main

    asked: list[str] = []
    typed = {
        "owner": "team-foo@example.com",
        "cost_center": "CC-4242",
        "environments": ["dev", "prod"],
        "services": ["web"],
        "canary": False,
    }

    def fake_prompt(questions, answers=None):
        name = questions[0]["name"]
        asked.append(name)
        return {name: typed[name]}

    monkeypatch.setattr(copier._main, "unsafe_prompt", fake_prompt)
    request = tenant_request.TenantRequest(name="foo", tier="standard")
    result = new_tenant_lib.new_tenant(git_repo, request, interactive=True)
    assert asked == ["owner", "cost_center", "environments", "services", "canary"], "tier was given; accounts never for pooled"
    assert result.branch == "tenant/foo"
    tenant = yaml.safe_load((git_repo / "tenants/foo.yaml").read_text())
    assert tenant["environments"] == ["dev", "prod"] and tenant["services"] == ["web"]

    typed["cost_center"] = "4242"
    with pytest.raises(UsageError, match="'4242' is not a cost center"):
        new_tenant_lib.new_tenant(git_repo, tenant_request.TenantRequest(name="bar", tier="standard"), interactive=True, allow_dirty=True)
    assert not (git_repo / "tenants/bar.yaml").exists()


def test_template_validators_use_the_spec_patterns():
    """copier.yml validates while prompting; its patterns must be the catalog's own."""
    questions = yaml.safe_load((REPO / "templates/tenant/copier.yml").read_text())
    questions = {
        k: {**v, "validator": v.get("validator", "").replace("\\\\", "\\")} if isinstance(v, dict) else v for k, v in questions.items()
    }  # undo the escaping of Jinja string literals

    def pattern(annotated) -> str:
        return next(m.pattern for m in annotated.__metadata__ if getattr(m, "pattern", None))

    assert spec.NAME_PATTERN in questions["name"]["validator"]
    assert pattern(spec.Email) in questions["owner"]["validator"]
    assert pattern(spec.CostCenter) in questions["cost_center"]["validator"]
    assert pattern(spec.AccountId) in questions["accounts"]["validator"]
    assert questions["_answers_file"].startswith(tenant_request.ANSWERS_DIR + "/")


def test_template_output_loads_as_a_tenant_for_every_tier(tmp_path):
    """The rendered file is a valid tenant for each tier (dedicated ones with accounts)."""
    f = facts()
    for tier in f.tiers:
        accounts = {env: f"9{i:011d}" for i, env in enumerate(f.environments)} if tier in f.dedicated_tiers else {}
        request = tenant_request.complete(tenant_request.TenantRequest("probe", tier, "a@example.com", "CC-123", accounts=accounts), f)
        assert tenant_request.check_request(request, f) == []
        out = tenant_template.render_template(
            REPO / "templates/tenant", "probe", {**f.template_data(), **tenant_request.answers_data(request, f)}, interactive=False
        )
        tenant = spec.Tenant.model_validate(yaml.safe_load(out.tenant_text))
        assert tenant.tier == tier and tenant.accounts == accounts
        assert out.answers["name"] == "probe" and "known_tiers" not in out.answers
