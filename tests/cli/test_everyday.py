"""Everyday use: explain while a rule fails, root cause first, check says the next step,
--version, completion, pre-commit hooks and a progress display that stays out of CI."""

from __future__ import annotations

import json
import re
import sys

import pytest
import yaml

from generator import pipeline
from generator.cli import fast_exit, progress
from generator.output import units
from generator.output.render import render
from helpers.catalog_edit import edit_yaml, override
from helpers.repo import REPO


def test_explain_runs_while_a_rule_fails_and_marks_the_violating_value(companyos, repo):
    override(repo, "acme", None, {"kms": {"rotation_days": 400}})
    assert companyos("validate", cwd=repo).code == 2  # the rule really fails
    result = companyos("explain", "acme", "prod", "kms.rotation_days", cwd=repo)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[2] == "kms.rotation_days = 400"
    (marked,) = [line for line in lines if "VIOLATES" in line]
    assert "[CO012]" in marked and "'acme' in prod" in marked
    data = json.loads(companyos("explain", "acme", "prod", "kms.rotation_days", "--format", "json", cwd=repo).out)
    assert data[0]["violates"] and data[0]["violates"][0].startswith("[CO012]")
    # values that break nothing carry no mark
    clean = json.loads(companyos("explain", "acme", "prod", "database.instance_class", "--format", "json", cwd=repo).out)
    assert clean[0]["violates"] == []


def test_explain_still_refuses_a_catalog_that_cannot_be_read(companyos, repo):
    (repo / "tenants/acme.yaml").write_text("tier: [unclosed\n")
    result = companyos("explain", "acme", "prod", cwd=repo)
    assert result.code == 2 and "tenants/acme.yaml:" in result.err


def test_root_cause_first_when_a_regulated_tier_is_made_pooled(companyos, repo):
    path = repo / "catalog/tiers/regulated.yaml"
    edit_yaml(path, lambda d: d.__setitem__("isolation", "pooled"))
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("isolation:"))
    result = companyos("validate", cwd=repo)
    assert result.code == 2
    errors = [e for e in result.err.splitlines() if not e.startswith("companyos:")]
    assert len(errors) > 5  # the structural consequences are still listed
    assert errors[0].startswith(f"catalog/tiers/regulated.yaml:{line}:") and "[CO001]" in errors[0]
    assert not any("[CO001]" in e for e in errors[1:])
    assert "fix the first error above (the root cause)" in result.err
    # render refuses the same way and writes nothing
    before = (repo / units.unit_path(units.GLOBAL)).read_bytes()
    render_result = companyos("render", cwd=repo)
    assert render_result.code == 2 and render_result.err.splitlines()[0] == errors[0]
    assert (repo / units.unit_path(units.GLOBAL)).read_bytes() == before


def test_check_says_what_resolves_each_difference(companyos, repo):
    (repo / "rendered/helm/dev/notes.txt").write_text("hand-made\n")
    stale = next(p for p in sorted((repo / "rendered/helm/dev").rglob("*.yaml")))
    edit_yaml(repo / "tenants/globex.yaml", lambda d: d.__setitem__("owner", "platform-team@example.com"))
    result = companyos("check", "--full", cwd=repo)
    assert result.code == 1
    changed = [line for line in result.out.splitlines() if line.startswith("changed")]
    assert changed and all("run `companyos render`" in line for line in changed)
    (unmanaged,) = [line for line in result.out.splitlines() if line.startswith("unmanaged")]
    assert "delete it or move it out of rendered/" in unmanaged
    assert "never deletes" in result.err
    data = json.loads(companyos("check", "--full", "--format", "json", cwd=repo).out)
    assert set(data["hints"]) == {"changed", "unmanaged"}
    assert "companyos render" in data["hints"]["changed"]
    assert stale.exists()


def test_version_flag_prints_the_installed_version(companyos):
    from importlib import metadata

    result = companyos("--version", cwd=REPO)
    assert result.code == 0 and result.out.strip() == f"companyos {metadata.version('companyos')}"


def test_shell_completion_is_offered(companyos):
    result = companyos("--help", cwd=REPO)
    assert "--install-completion" in result.out and "--show-completion" in result.out


def test_pre_commit_hooks_run_real_commands():
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    by_id = {h["id"]: h for h in hooks}
    assert set(by_id) == {"companyos-validate", "companyos-check"}
    import typer.main

    from generator.cli.main import app

    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    for hook in hooks:
        program, command = hook["entry"].split()[:2]
        assert program == "companyos" and command in commands
        assert hook["pass_filenames"] is False and hook["language"] == "system"
        assert re.compile(hook["files"]).search("tenants/acme.yaml")
    readme = (REPO / "README.md").read_text()
    assert "companyos-check" in readme and ".pre-commit-config.yaml" in readme


def test_progress_only_for_a_person_at_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert progress.wanted()
    monkeypatch.setenv("CI", "true")
    assert not progress.wanted()
    with progress.render_progress() as callback:
        assert callback is None
    monkeypatch.delenv("CI")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not progress.wanted()


def test_no_color_is_respected_by_the_console(monkeypatch):
    from rich.console import Console

    monkeypatch.setenv("NO_COLOR", "1")
    assert Console(stderr=True, force_terminal=True).no_color


@pytest.mark.parametrize("jobs", [1, 2])
def test_render_reports_progress_to_the_end_and_output_is_unchanged(sample, jobs):
    seen: list[tuple[int, int]] = []
    result = render(sample.model, jobs=jobs, progress=lambda done, total: seen.append((done, total)))
    assert result.files == {p: d for p, d in sample.result.files.items() if not p.startswith(units.UNITS_DIR + "/")}
    assert seen and seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == list(range(1, len(seen) + 1))


def test_progress_bar_appears_only_after_the_delay(monkeypatch):
    monkeypatch.setattr(progress, "wanted", lambda: True)
    monkeypatch.setattr(progress, "DELAY", 3600.0)
    with progress.render_progress() as callback:
        assert callback is not None
        callback(1, 4)  # far below the delay: no live display started
    monkeypatch.setattr(progress, "DELAY", 0.0)
    with progress.render_progress() as callback:
        assert callback is not None
        callback(1, 4)
        callback(4, 4)


def test_pipeline_build_passes_progress_through():
    calls: list[int] = []
    pipeline.build(REPO, jobs=1, progress=lambda done, total: calls.append(total))
    assert calls and len(set(calls)) == 1


def test_the_console_script_runs_without_the_cyclic_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    """``entry`` (the installed script) turns the collector off for its short-lived process;
    ``main`` (what tests call in-process) leaves it alone."""
    import gc
    import importlib
    import tomllib

    cli_main = importlib.import_module("generator.cli.main")  # the module (the package exports its `main` function)

    script = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["companyos"]
    assert script == "generator.cli:entry"
    seen: list[bool] = []
    monkeypatch.setattr(cli_main, "main", lambda: seen.append(gc.isenabled()))
    # not this process's end, nor its results held (tests/cli/test_fast_exit.py runs the real one)
    monkeypatch.setattr(fast_exit, "enable", lambda: None)
    monkeypatch.setattr(fast_exit, "leave", lambda code: seen.append(code == 0))
    try:
        cli_main.entry()
    finally:
        gc.enable()
    assert seen == [False, True]
