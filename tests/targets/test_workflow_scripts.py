"""The shell the rendered workflows run: every ``run:`` step with pipefail, every script clean
under shellcheck, and a failing ``companyos`` fails the step that runs it (a matrix or an
answer written to ``$GITHUB_OUTPUT`` from a command that failed would be empty, and the job
after it would skip its work or fail somewhere else)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.targets import workflows as target
from helpers.step_runner import EXPRESSION, PLACEHOLDER, effective_shell, run_step, shell_command
from helpers.workflow_linters import tool

#: What the stub prints: valid for every matrix and JSON answer the workflows read.
ANSWER = json.dumps({"count": 0, "jobs": 0, "include": []})


@pytest.fixture(scope="module")
def workflows(sample) -> dict[str, dict[str, Any]]:
    return {p: yaml.safe_load(b) for p, b in sample.result.files.items() if p.startswith(".github/workflows/")}


def _run_steps(workflows: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    for path, doc in sorted(workflows.items()):
        for name, job in doc["jobs"].items():
            for index, step in enumerate(job.get("steps", [])):
                if "run" in step:
                    yield f"{path}:{name}:{index}", doc, job, step


def test_every_run_step_runs_with_pipefail(workflows) -> None:
    """Unspecified, a Linux runner runs ``bash -e {0}``: a pipeline whose first command fails
    (``jq ... | while read``) then passes. ``shell: bash`` runs ``-eo pipefail``."""
    steps = list(_run_steps(workflows))
    assert len(steps) > 100
    for where, doc, job, step in steps:
        assert "pipefail" in shell_command(effective_shell(doc, job, step)), where


def _shellcheck(script: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [tool("shellcheck"), "--shell=bash", "--format=json1", "-"], input=script, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode in (0, 1), proc.stderr
    comments: list[dict[str, Any]] = json.loads(proc.stdout)["comments"]
    return comments


def test_every_run_step_and_ci_script_passes_shellcheck(workflows, sample) -> None:
    """shellcheck at its default severity (style included) over each step's script as the
    runner gets it (an expression is a plain word there) and the batch script the Terraform
    workflow runs."""
    found = {}
    for where, _, _, step in _run_steps(workflows):
        found[where] = _shellcheck("set -e\n" + EXPRESSION.sub(PLACEHOLDER, step["run"]))
    found[target.BATCH_SCRIPT] = _shellcheck(sample.result.files[target.BATCH_SCRIPT].decode())
    assert {
        where: [f"SC{c['code']} line {c['line']}: {c['message']}" for c in comments] for where, comments in found.items() if comments
    } == {}


def test_shellcheck_finds_what_the_workflows_no_longer_do() -> None:
    """The canaries: the quoting and unused-variable findings fixed in the workflows."""
    codes = {c["code"] for c in _shellcheck('branch="promote/$SERVICE-"stage"-$ID"\nread -r owner unused\necho "$owner $branch"\n')}
    assert {2140, 2034} <= codes


#: The jobs whose step writes a ``companyos`` answer to ``$GITHUB_OUTPUT`` for the jobs after it.
PRODUCERS = (
    "render-check.yml:lint-plan",
    "drift.yml:roots",
    "migrations.yml:changes",
    "restore-drill.yml:targets",
    "chaos-drill.yml:tenants",
)


def test_a_failing_companyos_fails_the_step_that_runs_it(workflows, tmp_path: Path) -> None:
    """Each step that runs ``companyos``, with the stub answering and succeeding, then failing:
    every step that reached it fails with it. The steps that hand its answer to the next jobs
    (:data:`PRODUCERS`) reach it and, when it succeeds, pass and write that answer."""
    reached, skipped, produced = [], [], set()
    for number, (where, doc, job, step) in enumerate(_run_steps(workflows)):
        if ".venv/bin/companyos" not in step["run"]:
            continue
        ok = run_step(doc, job, step, tmp_path / f"{number}-ok", code=0, stdout=ANSWER)
        producer = next((name for name in PRODUCERS if where.startswith(f".github/workflows/{name}:")), None)
        if producer is not None and "GITHUB_OUTPUT" in step["run"]:
            assert ok.code == 0 and ok.calls and ANSWER in ok.outputs, (where, ok)
            produced.add(producer)
        if not ok.calls:  # the script stops before it here (a plan file the runner has not got)
            skipped.append(where)
            continue
        reached.append(where)
        failed = run_step(doc, job, step, tmp_path / f"{number}-failed", code=2, stdout="")
        assert failed.calls and failed.code != 0, (where, failed)
    assert produced == set(PRODUCERS)
    assert len(reached) >= 40 and len(skipped) <= 3, (reached, skipped)


def test_the_runner_shell_without_pipefail_or_an_echoed_answer_lets_a_failure_through(workflows, tmp_path: Path) -> None:
    """The harness sees the two faults this file guards against: the same matrix step run the
    way an unspecified shell runs it still passes when its command writes through ``echo
    "matrix=$(...)"``, and a pipeline's failed first command passes without pipefail."""
    doc = workflows[".github/workflows/render-check.yml"]
    job = doc["jobs"]["lint-plan"]
    step = next(s for s in job["steps"] if s.get("id") == "plan")
    first, command, _ = step["run"].splitlines()
    assert command.startswith("matrix=$(")
    echoed = dict(step, run=f'{first}\necho "matrix={command.removeprefix("matrix=")}" >> "$GITHUB_OUTPUT"\n')
    assert run_step(doc, job, echoed, tmp_path / "echoed", code=2, stdout="").code == 0
    plain = {k: v for k, v in doc.items() if k != "defaults"}
    piped = {"run": '.venv/bin/companyos list-tenants --format tsv | while read -r name; do echo "$name"; done\n'}
    assert run_step(plain, job, piped, tmp_path / "plain", code=2, stdout="").code == 0
    assert run_step(doc, job, piped, tmp_path / "strict", code=2, stdout="").code != 0
