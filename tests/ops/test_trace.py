"""``companyos explain rendered/<path>:<line>``: from a rendered line back to the catalog lines
that produced it, proved by changing each value and re-rendering."""

from __future__ import annotations

import json
import re
from pathlib import Path

import hcl2
import pytest
import yaml

from generator.ops import trace
from helpers.catalog_edit import override
from helpers.repo import REPO


def line_of(path: Path, pattern: str) -> int:
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if re.search(pattern, text):
            return number
    raise AssertionError(f"{pattern!r} not in {path}")


def test_terraform_line_traces_to_the_tier_setting_that_made_it(companyos, repo):
    # dev: production sets backup retention itself (environments/prod.yaml, CO020)
    rel = "rendered/terraform/dev/tenant-acme/main.tf"
    number = line_of(repo / rel, r"^\s*backup_retention_period\s*=")
    result = companyos("explain", f"{rel}:{number}", "--format", "json", cwd=repo)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    proved = [c for c in data["causes"] if c["proved"]]
    assert [c["key"] for c in proved] == ["settings.database.backup_retention_days"]
    assert proved[0]["location"].startswith("catalog/tiers/regulated.yaml:")
    assert proved[0]["layer"] == "tier regulated"
    # the location is the real line of that value in the tier file
    path, line, _ = proved[0]["location"].split(":")
    assert "backup_retention_days" in (repo / path).read_text().splitlines()[int(line) - 1]
    assert data["template"].startswith("templates/terraform/")
    assert data["notes"] == []  # the one-tenant re-render is byte-identical to the committed file
    # the traced line is what the HCL parser reads as that attribute
    parsed = hcl2.loads((repo / rel).read_text())
    assert any(db.get("backup_retention_period") == 35 for module in parsed.get("module", []) for db in module.values())


def test_a_tenant_override_is_named_with_its_layer(companyos, repo):
    # tenants/acme.yaml overrides the instance class for prod only
    rel = "rendered/terraform/prod/tenant-acme/main.tf"
    number = line_of(repo / rel, r'^\s*instance_class\s*=\s*"db.r6g.xlarge"')
    data = json.loads(companyos("explain", f"{rel}:{number}", "--format", "json", cwd=repo).out)
    (cause,) = [c for c in data["causes"] if c["proved"]]
    assert cause["location"].startswith("tenants/acme.yaml:") and cause["layer"] == "tenant acme x prod"
    assert cause["key"] == "overrides.prod.database.instance_class" and cause["value"] == "db.r6g.xlarge"
    # after moving the override to a new value, the trace follows it
    override(repo, "acme", "prod", {"database": {"instance_class": "db.r6g.2xlarge"}})
    assert companyos("render", "-q", cwd=repo).code == 0
    number = line_of(repo / rel, r'^\s*instance_class\s*=\s*"db.r6g.2xlarge"')
    data = json.loads(companyos("explain", f"{rel}:{number}", "--format", "json", cwd=repo).out)
    assert [c["value"] for c in data["causes"] if c["proved"]] == ["db.r6g.2xlarge"]


def test_helm_values_and_platform_versions_are_traced(companyos, repo):
    rel = "rendered/helm/prod/acme/api.yaml"
    values = yaml.safe_load((repo / rel).read_text())
    assert values["deployment"]["resources"]["requests"]["cpu"] == "250m"
    number = line_of(repo / rel, r'^\s*cpu: "250m"')
    text = companyos("explain", f"{rel}:{number}", cwd=repo).out
    assert re.search(r"catalog/services/api\.yaml:\d+:\d+ \[service api\]\s+defaults\.resources\.requests\.cpu = \"250m\"\s+\(proved", text)
    # the ApplicationSet reads the chart version from each tenant's cell file ({{.chartVersion}})
    cell = "rendered/argocd/prod/cells/main/acme.json"
    number = line_of(repo / cell, '"chartVersion":')
    text = companyos("explain", f"{cell}:{number}", cwd=repo).out
    assert re.search(r"catalog/platform\.yaml:\d+:\d+\s+charts\.application\.version = \"[0-9.]+\"\s+\(proved", text)


def test_a_line_no_catalog_value_made_says_so(companyos, repo):
    result = companyos("explain", "rendered/terraform/prod/tenant-acme/main.tf:1", cwd=repo)
    assert result.code == 0
    assert "no catalog value appears on this line" in result.out


def test_workflow_lines_are_traced(companyos, repo):
    rel = ".github/workflows/deploy.yml"
    number = line_of(repo / rel, r"runs-on:")
    result = companyos("explain", f"{rel}:{number}", "--format", "json", cwd=repo)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["target"] == "workflows"
    assert any(c["location"].startswith("catalog/platform.yaml:") and c["proved"] for c in data["causes"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("README.md:3", "is not a rendered file"),
        ("../outside/rendered/x.yaml:1", "is not a rendered file"),
        ("rendered/helm/prod/acme/api.yaml:99999", "is past the end"),
        ("rendered/helm/prod/acme/nothing.yaml:1", "is not a file companyos generated"),
        ("rendered/.companyos-manifest.json:2", "bookkeeping"),
        ("rendered/.companyos-units/global.json:2", "bookkeeping"),
    ],
)
def test_bad_paths_are_clear_errors(companyos, repo, spec, message):
    (repo / "rendered/helm/prod/acme/nothing.yaml").write_text("a: 1\n")
    result = companyos("explain", spec, cwd=repo)
    assert result.code == 2 and message in result.err and "Traceback" not in result.err


def test_parse_spec_only_takes_path_and_line():
    assert trace.parse_spec("rendered/a.yaml:12") == ("rendered/a.yaml", 12)
    assert trace.parse_spec("acme") is None
    assert trace.parse_spec("rendered/a.yaml") is None


def test_trace_reads_the_repository_it_is_given():
    rel = "rendered/terraform/prod/tenant-acme/main.tf"
    number = line_of(REPO / rel, r"^\s*backup_retention_period\s*=")
    result = trace.trace_line(REPO, rel, number)
    assert result.text.strip().startswith("backup_retention_period")
    assert result.owner == {"tenant": "acme", "environment": "prod", "root": "rendered/terraform/prod/tenant-acme"}
    assert result.notes == []


def test_a_hand_edited_line_is_traced_from_the_fresh_render_with_a_note(repo):
    rel = "rendered/helm/prod/acme/api.yaml"
    (repo / rel).write_text((repo / rel).read_text().replace('cpu: "250m"', 'cpu: "999m"'))
    number = line_of(repo / rel, r'cpu: "999m"')
    result = trace.trace_line(repo, rel, number)
    assert result.text.strip() == 'cpu: "250m"'
    assert result.notes and "differs from a fresh render" in result.notes[0]
