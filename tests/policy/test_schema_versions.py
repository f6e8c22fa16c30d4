"""Forward-only migrations: versions follow the promotion chain (CO013), a contract waits
for its expand in production (CO014), and against the base ref nothing goes down and
expand and contract never ship together (CO015)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.catalog_edit import edit_yaml
from helpers.diagnostics import at, line_of, validate_errors
from helpers.gitrepo import commit_all

API = "catalog/services/api.yaml"


def set_versions(root: Path, **versions: int) -> Path:
    path = root / API
    edit_yaml(path, lambda d: d["migrations"]["versions"].update(versions))
    return path


def set_history(root: Path, history: list[dict]) -> Path:
    path = root / API
    edit_yaml(path, lambda d: d["migrations"].__setitem__("history", history))
    return path


@pytest.fixture
def committed(repo: Path) -> Path:
    """The sample catalog committed as the base, with api at dev 42, stage 41, prod 41."""
    set_versions(repo, dev=42, stage=41, prod=41)
    commit_all(repo, "base")
    return repo


# --- ordering inside one catalog (no base needed) ------------------------------------------


@pytest.mark.parametrize(
    ("versions", "ok"),
    [
        ({"dev": 42, "stage": 41, "prod": 41}, True),  # the sample: dev ahead
        ({"dev": 42, "stage": 42, "prod": 42}, True),  # all equal
        ({"dev": 41, "stage": 42, "prod": 41}, False),  # stage ahead of dev
        ({"dev": 42, "stage": 41, "prod": 42}, False),  # prod ahead of stage
    ],
)
def test_promotion_order(companyos, repo, versions, ok):
    set_versions(repo, **versions)
    if ok:
        assert companyos("validate", cwd=repo).code == 0
        return
    (err,) = validate_errors(companyos, repo)
    assert err["rule"] == "CO013" and err["path"] == API
    assert "is ahead of" in err["message"]


def test_missing_environment_version(companyos, repo):
    edit_yaml(repo / API, lambda d: d["migrations"]["versions"].pop("stage"))
    (err,) = validate_errors(companyos, repo)
    assert err["rule"] == "CO013" and "runs in stage but declares no schema version" in err["message"]


def test_version_for_unknown_environment(companyos, repo):
    path = set_versions(repo, qa=42)
    errors = validate_errors(companyos, repo)
    assert any(e["rule"] == "CO013" and "unknown environment 'qa'" in e["message"] and at(e)[1] == line_of(path, "qa:") for e in errors)


def test_contract_waits_for_expand_in_prod(companyos, repo):
    # expand 40 is only in dev and stage; contract 42 may not reach dev yet
    set_versions(repo, dev=42, stage=40, prod=39)
    (err,) = validate_errors(companyos, repo)
    assert err["rule"] == "CO014" and "expand 40 has not reached prod" in err["message"]
    # once prod runs the expand, the contract may proceed
    set_versions(repo, dev=42, stage=40, prod=40)
    assert companyos("validate", cwd=repo).code == 0


@pytest.mark.parametrize(
    ("history", "needle"),
    [
        ([{"version": 42, "kind": "contract"}], "must name an earlier expand"),
        ([{"version": 42, "kind": "contract", "expands": 41}], "must name an earlier expand"),  # 41 is no expand
        ([{"version": 40, "kind": "expand"}, {"version": 40, "kind": "contract", "expands": 40}], "twice"),
        ([{"version": 40, "kind": "expand", "expands": 39}], "only a contract names"),
    ],
)
def test_inconsistent_history(companyos, repo, history, needle):
    set_history(repo, history)
    errors = validate_errors(companyos, repo)
    assert any(e["rule"] == "CO014" and needle in e["message"] for e in errors), errors


# --- against the base ref ---------------------------------------------------------------------


def test_unchanged_versions_pass(companyos, committed):
    result = companyos("validate", "--base", "HEAD", cwd=committed)
    assert result.code == 0, result.err


def test_promoting_forward_passes(companyos, committed):
    set_versions(committed, stage=42)
    assert companyos("validate", "--base", "HEAD", cwd=committed).code == 0


def test_lowering_a_version_is_rejected(companyos, committed):
    path = set_versions(committed, dev=41)
    (err,) = validate_errors(companyos, committed, "--base", "HEAD")
    assert err["rule"] == "CO015"
    assert at(err) == (API, line_of(path, "versions:"))
    assert "goes down from 42 (at HEAD) to 41" in err["message"]


def test_expand_and_contract_never_reach_prod_together(companyos, repo):
    # base: expand 40 not yet in prod
    set_versions(repo, dev=40, stage=40, prod=39)
    set_history(repo, [{"version": 40, "kind": "expand"}])
    commit_all(repo, "base")
    # the change adds contract 42 and pushes everything to 42 at once: statically fine
    # (prod >= 40 now), but the expand was not in prod before this change.
    set_history(repo, [{"version": 40, "kind": "expand"}, {"version": 42, "kind": "contract", "expands": 40}])
    set_versions(repo, dev=42, stage=42, prod=42)
    assert companyos("validate", cwd=repo).code == 0
    errors = validate_errors(companyos, repo, "--base", "HEAD")
    assert {e["rule"] for e in errors} == {"CO015"}
    assert {e["message"].split("reaches ")[1].split(" ")[0] for e in errors} == {"dev", "stage", "prod"}
    # shipping the expand to prod first, then the contract, is fine
    set_history(repo, [{"version": 40, "kind": "expand"}])
    set_versions(repo, dev=40, stage=40, prod=40)
    commit_all(repo, "expand in prod")
    set_history(repo, [{"version": 40, "kind": "expand"}, {"version": 42, "kind": "contract", "expands": 40}])
    set_versions(repo, dev=42)
    assert companyos("validate", "--base", "HEAD", cwd=repo).code == 0


def test_check_base_runs_the_schema_guard(companyos, committed):
    set_versions(committed, dev=41)
    result = companyos("check", "--base", "HEAD", cwd=committed)
    assert result.code == 2 and "[CO015]" in result.err
