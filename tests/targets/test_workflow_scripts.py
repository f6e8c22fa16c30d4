"""The shell the rendered workflows run: every ``run:`` step with pipefail, every script clean
under shellcheck, and a failing ``companyos`` fails the step that runs it (a matrix or an
answer written to ``$GITHUB_OUTPUT`` from a command that failed would be empty, and the job
after it would skip its work or fail somewhere else). And render-check.yml's lint jobs end to
end: the base, the matrix and each batch's lint, with the real ``companyos`` and checkov.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.targets import workflows as target
from helpers.catalog_edit import new_owner
from helpers.gitrepo import commit_all
from helpers.k8s import privileged_pod
from helpers.repo import copy_repo
from helpers.step_runner import EXPRESSION, PLACEHOLDER, effective_shell, run_real_step, run_step, shell_command
from helpers.workflow_linters import tool

#: Dispatch inputs left empty, as a run for the whole environment leaves them (the failover
#: and failback steps then reach ``companyos standby`` without a tenant's plan file).
INPUTS = {"inputs.tenant": ""}
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
    """Each step that runs ``companyos``, with the stub answering and succeeding, then failing
    at each of its calls in turn: every step reaches it, and stops and fails at whichever call
    fails (none is masked by a later one). The steps that hand its answer to the next jobs
    (:data:`PRODUCERS`), when it succeeds, pass and write that answer."""
    reached, produced = [], set()
    for number, (where, doc, job, step) in enumerate(_run_steps(workflows)):
        if ".venv/bin/companyos" not in step["run"]:
            continue
        ok = run_step(doc, job, step, tmp_path / f"{number}-ok", stdout=ANSWER, values=INPUTS)
        producer = next((name for name in PRODUCERS if where.startswith(f".github/workflows/{name}:")), None)
        if producer is not None and "GITHUB_OUTPUT" in step["run"]:
            assert ok.code == 0 and ok.calls and ANSWER in ok.outputs, (where, ok)
            produced.add(producer)
        assert ok.calls, f"{where}: the stub never ran ({ok.stderr[-300:]})"
        reached.append(where)
        for call in range(1, len(ok.calls) + 1):
            failed = run_step(doc, job, step, tmp_path / f"{number}-failed-{call}", stdout=ANSWER, fails_at=call, values=INPUTS)
            assert failed.code != 0 and len(failed.calls) == call, (where, call, failed)
    assert produced == set(PRODUCERS)
    assert len(reached) >= 40, reached  # the harness found the workflows' companyos steps (47 today)


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
    assert run_step(doc, job, echoed, tmp_path / "echoed", stdout=ANSWER, fails_at=1).code == 0
    plain = {k: v for k, v in doc.items() if k != "defaults"}
    piped = {"run": '.venv/bin/companyos list-tenants --format tsv | while read -r name; do echo "$name"; done\n'}
    assert run_step(plain, job, piped, tmp_path / "plain", stdout=ANSWER, fails_at=1).code == 0
    assert run_step(doc, job, piped, tmp_path / "strict", stdout=ANSWER, fails_at=1).code != 0


# --- render-check.yml's lint jobs, end to end ----------------------------------------------

#: The sample's tenants a pull request below changes (three units in play: two jobs of two).
CHANGED = ("acme", "globex", "hooli")
UNITS_PER_JOB = 2


def _lint_jobs(workflows: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """render-check.yml, and its lint-plan and lint jobs with two units per job instead of
    :data:`target.LINT_UNITS_PER_JOB` (the sample's five tenants would be one job)."""
    doc = workflows[".github/workflows/render-check.yml"]
    wanted = f"--units-per-job {target.LINT_UNITS_PER_JOB} "
    jobs = {}
    for name in ("lint-plan", "lint"):
        job = json.loads(json.dumps(doc["jobs"][name]))
        for step in job["steps"]:
            if "companyos lint" in step.get("run", ""):
                assert step["run"].count(wanted) == 1, step["run"]
                step["run"] = step["run"].replace(wanted, f"--units-per-job {UNITS_PER_JOB} ")
        jobs[name] = job
    return doc, jobs["lint-plan"], jobs["lint"]


def _step(job: dict[str, Any], which: str) -> dict[str, Any]:
    return next(s for s in job["steps"] if s.get("id") == which or which in s.get("run", ""))


def _outputs(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


@pytest.fixture(scope="module")
def pull_request(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The sample committed as a base, then a pull request that changes three tenants' owners
    (rendered) and plants a privileged Pod in hooli's namespace file (checkov's CKV_K8S_16)."""
    from generator import pipeline

    root = copy_repo(tmp_path_factory.mktemp("lint-jobs") / "repo")
    base = commit_all(root, "base")
    for tenant in CHANGED:
        new_owner(root, tenant, f"someone-else-{tenant}@example.com")
    pipeline.render_to_disk(root)
    namespace = root / "rendered/argocd/prod/namespaces/hooli.yaml"
    namespace.write_text(namespace.read_text(encoding="utf-8") + PRIVILEGED_POD, encoding="utf-8")
    commit_all(root, "the pull request")
    return root, base


PRIVILEGED_POD = "---\n" + privileged_pod("planted", "tenant-hooli")


@pytest.mark.slow
def test_the_lint_jobs_run_the_plans_batches_end_to_end(workflows, pull_request, tmp_path: Path) -> None:
    """A pull request through render-check.yml's lint-plan job (the base step, then the
    matrix) and one lint job per matrix entry, each step's script as the runner runs it with
    the real companyos and checkov: the matrix cuts the three changed tenants into two jobs,
    and only the job whose batch holds hooli fails, on the Pod planted there."""
    root, base = pull_request
    doc, plan_job, lint_job = _lint_jobs(workflows)
    github = {
        "github.token": "unused",
        "github.repository": "example/platform",
        "github.event_name": "pull_request",
        "github.event.pull_request.base.sha": base,
    }
    found = run_real_step(doc, plan_job, _step(plan_job, "base"), root, tmp_path / "base", github)
    assert found.code == 0 and _outputs(found.outputs) == {"sha": base}, found.stderr
    planned = run_real_step(doc, plan_job, _step(plan_job, "plan"), root, tmp_path / "plan", {"steps.base.outputs.sha": base})
    assert planned.code == 0, planned.stderr
    matrix = json.loads(_outputs(planned.outputs)["matrix"])
    assert matrix["count"] == len(CHANGED) and [e["batch"] for e in matrix["include"]] == ["1/2", "2/2"]
    verdicts = {}
    for entry in matrix["include"]:
        values = {"needs.lint-plan.outputs.base": base, "matrix.batch": entry["batch"]}
        ran = run_real_step(doc, lint_job, _step(lint_job, "companyos lint"), root, tmp_path / entry["name"], values)
        verdicts[entry["batch"]] = ran
    assert verdicts["1/2"].code == 0, verdicts["1/2"].stderr  # acme and globex
    failed = verdicts["2/2"]  # hooli
    assert failed.code != 0 and "CKV_K8S_16" in failed.stderr and "namespaces/hooli.yaml" in failed.stderr, failed.stderr


def test_a_push_lints_since_the_last_passed_push_or_everything(workflows, pull_request, tmp_path: Path) -> None:
    """The base step of a push asks ``gh`` for the branch's last passed push (a stub answers
    here): that commit when the clone has it, else nothing, and the plan then cuts every
    tenant unit of HEAD (``--committed``)."""
    root, base = pull_request
    doc, plan_job, _ = _lint_jobs(workflows)
    github = {"github.token": "unused", "github.repository": "example/platform", "github.event_name": "push"}
    github["github.event.pull_request.base.sha"] = ""
    answers = {}
    for answer in (base, "0" * 40):
        gh = tmp_path / answer[:8] / "bin" / "gh"
        gh.parent.mkdir(parents=True)
        gh.write_text(f"#!/bin/bash\necho {answer}\n", encoding="utf-8")
        gh.chmod(0o755)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PATH", f"{gh.parent}:{os.environ['PATH']}")
            found = run_real_step(doc, plan_job, _step(plan_job, "base"), root, tmp_path / answer[:8] / "base", github)
        assert found.code == 0, found.stderr
        answers[answer] = _outputs(found.outputs)["sha"]
    assert answers == {base: base, "0" * 40: ""}
    planned = run_real_step(doc, plan_job, _step(plan_job, "plan"), root, tmp_path / "whole", {"steps.base.outputs.sha": ""})
    matrix = json.loads(_outputs(planned.outputs)["matrix"])
    assert planned.code == 0 and matrix["count"] == 5 and len(matrix["include"]) == 3, planned.stderr
