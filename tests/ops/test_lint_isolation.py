"""``companyos lint`` runs the isolation analyzer over its fresh render (docs/isolation.md,
"The analyzer"): clean on the sample, and a planted cross-tenant path fails the tool."""

from __future__ import annotations

from pathlib import Path

from generator import pipeline
from generator.ops import lint

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
