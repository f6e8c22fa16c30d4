"""``companyos lint`` runs the isolation analyzer over its fresh render (docs/isolation.md,
"The analyzer"): clean on the sample, and a planted cross-tenant path fails the tool."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from generator import pipeline
from generator.ops import lint
from helpers.repo import CliResult

GLOBEX = "rendered/terraform/prod/tenant-globex/main.tf"


def test_lint_reports_no_isolation_finding_on_the_sample(sample: pipeline.Build, tmp_path: Path) -> None:
    lint._write(sample, tmp_path)
    result = lint._isolation(tmp_path, sample)
    assert result.name == "isolation" and result.files > 100
    assert result.errors == []


def test_a_loosened_irsa_trust_fails_the_isolation_tool(sample: pipeline.Build, tmp_path: Path) -> None:
    lint._write(sample, tmp_path)
    path = tmp_path / GLOBEX
    text = path.read_text(encoding="utf-8")
    assert 'trust_condition_test = "StringEquals"' in text
    path.write_text(text.replace('trust_condition_test = "StringEquals"', 'trust_condition_test = "StringLike"', 1), encoding="utf-8")
    result = lint._isolation(tmp_path, sample)
    assert len(result.errors) == 1 and "prod: identity: * -> globex:" in result.errors[0] and "StringLike" in result.errors[0]
    report = lint.LintReport(tools=[result])
    assert not report.ok


@pytest.mark.parametrize("wanted", [True, False])
def test_the_isolation_tool_runs_unless_left_out(sample: pipeline.Build, monkeypatch: pytest.MonkeyPatch, wanted: bool) -> None:
    """``lint --no-isolation``: the render-check workflow gives the analyzer one job per
    environment, so its lint step leaves it out instead of parsing every root again."""
    for tool in ("_yamllint", "_workflow_schema", "_kubernetes"):
        monkeypatch.setattr(lint, tool, lambda *a, _name=tool, **k: lint.ToolResult(_name))
    monkeypatch.setattr(lint, "_write", lambda build, dest: [])
    monkeypatch.setattr(lint, "_isolation", lambda folder, build: lint.ToolResult("isolation"))
    report = lint.run(sample, use_checkov=False, use_isolation=wanted)
    assert ("isolation" in [t.name for t in report.tools]) is wanted


def test_the_cli_passes_no_isolation_on(
    sample: pipeline.Build, repo: Path, monkeypatch: pytest.MonkeyPatch, companyos: Callable[..., CliResult]
) -> None:
    seen: dict[str, object] = {}
    monkeypatch.setattr(pipeline, "build", lambda root=None: sample)
    monkeypatch.setattr(lint, "run", lambda build, **options: seen.update(options) or lint.LintReport())
    assert companyos("lint", "--no-checkov", "--no-isolation", cwd=repo).code == 0
    assert seen == {"use_checkov": False, "use_isolation": False}
