"""The hand-written justfile gives the operating model's commands (rust-just from PyPI)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.repo import REPO

JUST = Path(sys.executable).parent / "just"


def just(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    tool = str(JUST) if JUST.is_file() else shutil.which("just")
    assert tool, "just is not installed: run `make install-test` (rust-just)"
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "env", "service"),
    [
        (("deploy", "env=dev", "service=all"), "dev", "all"),
        (("deploy", "env=prod", "service=api"), "prod", "api"),
        (("deploy", "stage"), "stage", "all"),
    ],
)
def test_deploy_runs_the_release_chain_ending_in_the_deploy_workflow(args, env, service):
    result = just("--dry-run", *args)
    assert result.returncode == 0, result.stderr
    script = result.stderr
    assert f"env='{env}'\nservice='{service}'\nref='main'" in script
    steps = [
        'gh workflow run "release-$svc.yml"',
        "gh workflow run promote.yml",
        "companyos check",
        'gh workflow run deploy.yml --ref "$ref" -f "env=$env" -f "service=$service"',
    ]
    assert [script.index(s) for s in steps] == sorted(script.index(s) for s in steps)


def test_deploy_arguments_are_shell_quoted():
    result = just("--dry-run", "deploy", "env=dev; rm -rf /", "service=all")
    assert "env='dev; rm -rf /'" in result.stderr


def _fake_gh(tmp_path: Path) -> tuple[dict[str, str], Path]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "calls"
    (bindir / "gh").write_text(f'#!/bin/sh\necho "gh $*" >> {log}\n', encoding="utf-8")
    (bindir / "gh").chmod(0o755)
    return {"PATH": f"{bindir}:{Path(sys.executable).parent}:/usr/bin:/bin"}, log


def test_deploy_builds_what_dev_does_not_run_yet_and_stops_for_the_pull_request(tmp_path):
    env, log = _fake_gh(tmp_path)
    tool = str(JUST) if JUST.is_file() else shutil.which("just")
    result = subprocess.run([tool, "deploy", "env=dev", "service=api"], cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    # The sample's recorded dev tag is not a commit of services/api, so a build is needed first.
    assert log.read_text().splitlines() == ["gh workflow run release-api.yml --ref main"]
    assert "merge the pull requests" in result.stdout


def test_deploy_of_an_already_promoted_environment_checks_then_syncs(repo, companyos, tmp_path):
    assert companyos("render", cwd=repo).code == 0
    if not (repo / ".venv").exists():
        (repo / ".venv").symlink_to(REPO / ".venv")
    env, log = _fake_gh(tmp_path)
    tool = str(JUST) if JUST.is_file() else shutil.which("just")
    result = subprocess.run([tool, "deploy", "env=stage", "service=api"], cwd=repo, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == ["gh workflow run deploy.yml --ref main -f env=stage -f service=api"]


def test_the_deploy_workflow_it_dispatches_is_generated():
    assert (REPO / ".github/workflows/deploy.yml").is_file()


def test_infra_runs_terraform_over_the_environments_roots_in_order(tmp_path):
    # A fake terraform on PATH records what `just infra` runs, over the real rendered roots.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "calls"
    fake = bindir / "terraform"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n', encoding="utf-8")
    fake.chmod(0o755)
    env = {"PATH": f"{bindir}:{Path(sys.executable).parent}:/usr/bin:/bin"}
    tool = str(JUST) if JUST.is_file() else shutil.which("just")
    result = subprocess.run([tool, "infra", "env=dev", "plan"], cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    calls = log.read_text(encoding="utf-8").splitlines()
    roots = [c.split()[0].removeprefix("-chdir=") for c in calls if c.split()[1] == "plan"]
    assert roots[0] == "rendered/terraform/dev/shared"
    assert roots and all(r.startswith("rendered/terraform/dev/") for r in roots)
    assert all((REPO / r / "main.tf").is_file() or (REPO / r / "versions.tf").is_file() for r in roots)
    assert len(calls) == 2 * len(roots)  # init + plan each
    bad = subprocess.run([tool, "infra", "env=dev", "destroy"], cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode != 0 and "usage: just infra" in bad.stderr


@pytest.mark.parametrize("recipe", ["render", "check", "test"])
def test_everyday_recipes_exist(recipe):
    result = just("--dry-run", recipe)
    assert result.returncode == 0 and result.stderr.strip() == f"make {recipe}"
