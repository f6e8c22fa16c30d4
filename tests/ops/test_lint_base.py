"""``lint --base REF``: a pull request's commit is linted for what it adds or changes since its
base (the base's files passed lint when it merged), read from git's objects; checkov sees
every ``.tf`` file of a changed Terraform root; when lint itself changed, every output file is
linted again (docs/guardrails.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from generator.ops import lint, lint_scope
from helpers.catalog_edit import new_owner
from helpers.gitrepo import commit_all
from helpers.repo import CliResult, copy_repo

GLOBEX_NS = "rendered/argocd/prod/namespaces/globex.yaml"
ACME_PROJECT = "rendered/argocd/dev/projects/acme.yaml"
ACME_ALARMS = "rendered/terraform/prod/tenant-acme/alarms.tf"


def append(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


#: A ConfigMap whose ``data`` is a list (kubernetes-validate) and whose ``name`` repeats (yamllint).
BAD_DOC = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: planted\n  name: planted\n  namespace: tenant-globex\ndata: [1]\n"


@pytest.fixture
def pull_request(tmp_path: Path) -> Path:
    """The sample committed as the base, with a fault already in it (lint passed it then, say:
    it is not the pull request's), then a pull request's commit: a bad document added to one
    namespace file and a comment to one Terraform file."""
    root = copy_repo(tmp_path / "repo")
    append(root, ACME_PROJECT, BAD_DOC.replace("globex", "acme"))
    commit_all(root, "base")
    append(root, GLOBEX_NS, BAD_DOC)
    append(root, ACME_ALARMS, "# reviewed\n")
    commit_all(root, "the pull request")
    return root


def test_only_what_the_commit_changed_is_linted(pull_request: Path) -> None:
    report = lint.run_since(pull_request, "HEAD~1", use_checkov=False)
    errors = [e for tool in report.tools for e in tool.errors]
    assert errors and all(e.startswith(GLOBEX_NS) for e in errors), errors
    assert {t.name for t in report.tools if t.errors} == {"yamllint", "kubernetes-validate + CRD schemas"}
    assert report.scope.startswith("2 output file(s) HEAD added or changed since HEAD~1")
    yamllint = next(t for t in report.tools if t.name == "yamllint")
    assert yamllint.files == 1  # the namespace file; the Terraform file is no YAML


def test_checkov_sees_every_tf_file_of_a_changed_root(pull_request: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(lint, "checkov_binary", lambda root: "checkov")
    monkeypatch.setattr(
        lint,
        "_checkov",
        lambda folder, binary, config, report, owners: (
            seen.extend(sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())) or lint.ToolResult("checkov")
        ),
    )
    lint.run_since(pull_request, "HEAD~1")
    acme = pull_request / "rendered/terraform/prod/tenant-acme"
    assert [p for p in seen if p.endswith(".tf")] == sorted(p.relative_to(pull_request).as_posix() for p in acme.glob("*.tf"))
    assert GLOBEX_NS in seen and ACME_PROJECT not in seen


def test_the_commit_is_linted_not_the_checkout(pull_request: Path) -> None:
    (pull_request / GLOBEX_NS).write_text("fixed: on disk only\n", encoding="utf-8")
    report = lint.run_since(pull_request, "HEAD~1", use_checkov=False)
    assert any(e.startswith(GLOBEX_NS) for t in report.tools for e in t.errors)


def test_when_lint_changed_every_output_file_is_linted(pull_request: Path) -> None:
    append(pull_request, "catalog/lint.yaml", "# a new rule would go here\n")
    commit_all(pull_request, "lint changed")
    scope = lint_scope.since(pull_request, "HEAD~2")
    assert scope.whole and scope.reasons == ("catalog/lint.yaml",)
    report = lint.run_since(pull_request, "HEAD~2", use_checkov=False)
    errors = [e for tool in report.tools for e in tool.errors]
    assert any(e.startswith(ACME_PROJECT) for e in errors) and any(e.startswith(GLOBEX_NS) for e in errors)
    assert report.scope.startswith("every output file of HEAD: lint changed since HEAD~2 (catalog/lint.yaml)")
    yamllint = next(t for t in report.tools if t.name == "yamllint")
    assert yamllint.files == sum(1 for p in (pull_request / "rendered").rglob("*.yaml")) + sum(
        1 for p in (pull_request / ".github/workflows").glob("*.yml")
    )


def test_an_honest_commit_lints_clean_and_a_deleted_file_needs_nothing(tmp_path: Path) -> None:
    root = copy_repo(tmp_path / "repo")
    commit_all(root, "base")
    (root / GLOBEX_NS).unlink()
    append(root, ACME_ALARMS, "# reviewed\n")
    commit_all(root, "the pull request")
    report = lint.run_since(root, "HEAD~1", use_checkov=False)
    assert report.ok and report.scope.startswith("1 output file(s)")


def test_a_catalog_in_a_subfolder_of_the_repository(tmp_path: Path) -> None:
    root = copy_repo(tmp_path / "top" / "platform")
    commit_all(tmp_path / "top", "base")
    append(root, GLOBEX_NS, BAD_DOC)
    commit_all(tmp_path / "top", "the pull request")
    scope = lint_scope.since(root, "HEAD~1")
    assert scope.changed == {GLOBEX_NS}
    report = lint.run_since(root, "HEAD~1", use_checkov=False)
    assert [e.split(":")[0] for t in report.tools for e in t.errors] and all(
        e.startswith(GLOBEX_NS) for t in report.tools for e in t.errors
    )


def test_cli(pull_request: Path, companyos: Callable[..., CliResult]) -> None:
    bad = companyos("lint", "--base", "HEAD~1", "--no-checkov", cwd=pull_request)
    assert bad.code == 1 and bad.out.startswith("lint scope: 2 output file(s) HEAD added or changed since HEAD~1")
    assert bad.out.endswith("\n")  # the report is whole lines
    both = companyos("lint", "--base", "HEAD~1", "--no-checkov", "--isolation", cwd=pull_request)
    assert both.code == 2 and "does not run the isolation analyzer" in both.err
    unknown = companyos("lint", "--base", "no-such-ref", "--no-checkov", cwd=pull_request)
    assert unknown.code == 2 and "git ref 'no-such-ref' does not exist" in unknown.err


def test_a_rendered_change_judges_its_root_with_its_own_and_the_global_units_files(tmp_path: Path) -> None:
    """The org root holds one account file and one identity file per tenant (~11,000 files at
    10,000 tenants): a change to one tenant's is judged with that tenant's and the global unit's
    files of the root, not every tenant's."""
    from generator import pipeline

    root = copy_repo(tmp_path / "repo")
    commit_all(root, "base")
    new_owner(root, "acme", "someone-else@example.com")
    pipeline.render_to_disk(root)
    commit_all(root, "the pull request")
    scope = lint_scope.since(root, "HEAD~1")
    org = {p for p in scope.blobs if p.startswith("rendered/terraform/org/")}
    assert "rendered/terraform/org/tenant-acme.tf" in scope.changed
    assert {"rendered/terraform/org/main.tf", "rendered/terraform/org/identity-acme.tf", "rendered/terraform/org/tenant-acme.tf"} <= org
    every = {p.relative_to(root).as_posix() for p in (root / "rendered/terraform/org").glob("*.tf")}
    others = {p for p in every if any(p.endswith(f"-{t}.tf") for t in ("globex", "hooli", "initech", "umbrella"))}
    assert others and org == every - others  # the shared files and acme's, no other tenant's


def test_the_global_units_files_are_the_context_when_only_a_tenants_unit_changed(tmp_path: Path) -> None:
    """A commit whose global manifest is the base's: its files of a changed root come from
    HEAD's tree all the same (``main.tf`` of the org root is the global unit's)."""
    from helpers.baseline import forge

    root = copy_repo(tmp_path / "repo")
    commit_all(root, "base")
    rel = "rendered/terraform/org/tenant-acme.tf"
    forge(root, rel, (root / rel).read_bytes() + b"# reviewed\n", "tenant/acme")
    commit_all(root, "the pull request")
    scope = lint_scope.since(root, "HEAD~1")
    assert scope.changed == {rel, "rendered/.companyos-units/tenant-acme.json"}
    org = {p for p in scope.blobs if p.startswith("rendered/terraform/org/")}
    assert {"rendered/terraform/org/main.tf", rel, "rendered/terraform/org/identity-acme.tf"} <= org
    assert not any(p.endswith("-globex.tf") for p in org)


# --- batches: a whole lint at 10,000 tenants as a matrix of jobs -------------------------------

TENANTS = ("acme", "globex", "hooli", "initech", "umbrella")


@pytest.fixture
def four_tenants_changed(tmp_path: Path) -> Path:
    """The sample committed, then a commit that changes four tenants' owners (rendered)."""
    from generator import pipeline

    root = copy_repo(tmp_path / "repo")
    commit_all(root, "base")
    for tenant in TENANTS[:4]:
        new_owner(root, tenant, f"someone-else-{tenant}@example.com")
    pipeline.render_to_disk(root)
    commit_all(root, "the pull request")
    return root


def _org_tenants(scope: lint_scope.Scope) -> set[str]:
    """The tenants whose org-root files (``tenant-<t>.tf``, ``identity-<t>.tf``) ``scope`` writes."""
    org = [p.removeprefix("rendered/terraform/org/") for p in scope.blobs if p.startswith("rendered/terraform/org/")]
    return {t for t in TENANTS if any(name.endswith(f"-{t}.tf") for name in org)}


def test_batches_split_the_changed_units_and_together_are_the_whole_scope(four_tenants_changed: Path) -> None:
    root = four_tenants_changed
    whole = lint_scope.since(root, "HEAD~1")
    parts = [lint_scope.since(root, "HEAD~1", lint_scope.Batch(k, 3)) for k in (1, 2, 3)]
    assert set().union(*(p.changed for p in parts)) == whole.changed  # nothing left out
    assert sum(len(p.changed) for p in parts) == len(whole.changed)  # nothing linted twice
    # contiguous parts of the four changed tenants: acme, globex | hooli | initech
    manifests = [
        {m.removeprefix("rendered/.companyos-units/") for m in p.changed if m.startswith("rendered/.companyos-units/tenant-")}
        for p in parts
    ]
    assert manifests == [{"tenant-acme.json", "tenant-globex.json"}, {"tenant-hooli.json"}, {"tenant-initech.json"}]
    for part, tenants in zip(parts, (("acme", "globex"), ("hooli",), ("initech",)), strict=True):
        assert {p.split("/")[3] for p in part.changed if p.startswith("rendered/terraform/dev/")} == {f"tenant-{t}" for t in tenants}
    # the org root changed for acme alone: judged in the first part with the global unit's files and
    # its units' (acme's, globex's), not those of units in play in other parts (hooli, initech)
    assert _org_tenants(parts[0]) == {"acme", "globex"} and "rendered/terraform/org/main.tf" in parts[0].blobs
    assert not any(p.startswith("rendered/terraform/org/") for part in parts[1:] for p in part.blobs)
    global_manifest = "rendered/.companyos-units/global.json"
    assert (global_manifest in parts[0].changed) == (global_manifest in whole.changed)
    assert all(global_manifest not in p.changed for p in parts[1:])
    assert parts[1].describe().startswith(f"{len(whole.changed)} output file(s) HEAD added or changed since HEAD~1; batch 2/3")


def test_committed_lints_every_output_file_of_head_in_batches(four_tenants_changed: Path, companyos: Callable[..., CliResult]) -> None:
    root = four_tenants_changed
    every = lint_scope.since(root, None)
    on_disk = {
        p.relative_to(root).as_posix() for folder in ("rendered", ".github/workflows") for p in (root / folder).rglob("*") if p.is_file()
    }
    assert every.whole and every.changed == on_disk
    assert every.describe().startswith("every output file of HEAD (")
    parts = [lint_scope.since(root, None, lint_scope.Batch(k, 2)) for k in (1, 2)]
    assert parts[0].changed | parts[1].changed == every.changed and not parts[0].changed & parts[1].changed
    assert [_org_tenants(p) for p in parts] == [{"acme", "globex", "hooli"}, {"initech", "umbrella"}]
    matrix = json.loads(companyos("lint", "--committed", "--format", "matrix", "--units-per-job", "2", cwd=root).out)
    assert matrix == {
        "count": 5,
        "jobs": 3,
        "include": [{"batch": f"{k}/3", "name": f"{k}-of-3", "size": size} for k, size in ((1, 2), (2, 2), (3, 1))],
    }
    capped = json.loads(companyos("lint", "--committed", "--format", "matrix", "--units-per-job", "1", "--max-jobs", "2", cwd=root).out)
    assert capped["jobs"] == 2 and [i["size"] for i in capped["include"]] == [3, 2]
    one = json.loads(companyos("lint", "--base", "HEAD~1", "--format", "matrix", "--units-per-job", "3", cwd=root).out)
    assert (one["count"], one["jobs"]) == (4, 2)  # the four changed tenants
    stale = companyos("lint", "--committed", "--batch", "1/2", "--units-per-job", "2", "--no-checkov", cwd=root)
    assert stale.code == 2 and "make 3 batch(es), not 2" in stale.err
    linted = companyos("lint", "--committed", "--batch", "3/3", "--units-per-job", "2", "--no-checkov", cwd=root)
    assert linted.code == 0 and linted.out.startswith("lint scope: every output file of HEAD; batch 3/3 of the units in play:"), linted.out
    bad = companyos("lint", "--batch", "1/1", "--no-checkov", cwd=root)
    assert bad.code == 2 and "give --base REF or --committed" in bad.err


def test_a_file_no_unit_lists_is_the_first_batchs_with_its_root_whole(four_tenants_changed: Path) -> None:
    root = four_tenants_changed
    stray = "rendered/terraform/prod/tenant-umbrella/stray.tf"
    (root / stray).write_text("# listed by no manifest\n", encoding="utf-8")
    commit_all(root, "a stray file")
    parts = [lint_scope.since(root, "HEAD~2", lint_scope.Batch(k, 2)) for k in (1, 2)]
    assert stray in parts[0].changed and stray not in parts[1].changed
    umbrella = {p.relative_to(root).as_posix() for p in (root / "rendered/terraform/prod/tenant-umbrella").glob("*.tf")}
    assert umbrella <= set(parts[0].blobs)  # its root whole: umbrella's unit is not in play


@pytest.mark.parametrize(
    ("units", "per_job", "jobs"), [(0, 200, 1), (1, 200, 1), (200, 200, 1), (201, 200, 2), (10_000, 200, 50), (100_000, 200, 256)]
)
def test_the_cut_takes_every_unit_once_in_at_most_256_jobs(units: int, per_job: int, jobs: int) -> None:
    names = sorted(f"tenant/t{i:06d}" for i in range(units))
    assert lint_scope.jobs_needed(units, per_job) == jobs
    parts = lint_scope._cut(names, jobs)
    assert len(parts) == jobs and [u for part in parts for u in part] == names
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    with pytest.raises(lint_scope.UsageError):
        lint_scope.jobs_needed(units, 0)
