"""Run a workflow's ``run:`` step the way a GitHub-hosted Linux runner does: the shell its
``shell`` (or the job's or workflow's ``defaults.run.shell``) names, with the runner's default
options, the step's ``env``, and the runner's files (``$GITHUB_OUTPUT``, ``$RUNNER_TEMP``).

:func:`run_step`: no cloud or cluster is here, so ``companyos`` is a stub that records its
arguments, prints an answer and succeeds, or fails at a given call; a few plain tools are the real ones
(``REAL_TOOLS``) and any other command does nothing and succeeds (bash's
``command_not_found_handle``): what is asked is only how the script treats the stub's answer.
``${{ ... }}`` expressions become :data:`PLACEHOLDER`. :func:`run_real_step`: the real
``companyos`` in a git checkout, each expression given its value.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.repo import REPO

EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)
#: What an expression evaluates to here: a word that is a valid tenant, environment or branch name.
PLACEHOLDER = "placeholder"
#: Tools run for real (they touch only the step's scratch folder).
REAL_TOOLS = ("cat", "cut", "date", "find", "grep", "head", "jq", "mkdir", "sed", "sort", "tee", "touch", "tr", "wc")


def shell_command(shell: str | None) -> list[str]:
    """The command a GitHub-hosted Linux runner runs a step's script with, ``{0}`` its path
    (docs.github.com, "jobs.<job_id>.steps[*].shell": unspecified is ``bash -e {0}``, without
    pipefail; ``shell: bash`` adds ``--noprofile --norc -o pipefail``)."""
    if shell is None:
        return ["bash", "-e", "{0}"]
    if shell == "bash":
        return ["bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"]
    if shell == "sh":
        return ["sh", "-e", "{0}"]
    return shell.split()


def effective_shell(workflow: dict[str, Any], job: dict[str, Any], step: dict[str, Any]) -> str | None:
    """The step's shell: its own, else its job's default, else its workflow's."""
    for holder in (step, job.get("defaults", {}).get("run", {}), workflow.get("defaults", {}).get("run", {})):
        if holder.get("shell"):
            return str(holder["shell"])
    return None


@dataclass(frozen=True)
class StepRun:
    code: int
    #: The stub's argument lines, one per call.
    calls: list[str]
    outputs: str
    #: stderr (with a real run, stdout first).
    stderr: str


def run_step(
    workflow: dict[str, Any],
    job: dict[str, Any],
    step: dict[str, Any],
    folder: Path,
    *,
    stdout: str,
    fails_at: int | None = None,
    values: Mapping[str, str] | None = None,
) -> StepRun:
    """Run ``step`` (of ``job`` in ``workflow``) in the empty ``folder``, the stub answering
    ``stdout`` and succeeding, except its ``fails_at``-th call (from 1), which prints nothing and
    exits 2. ``values``: some expressions' values by their text (an optional input left
    empty, say); every other expression is :data:`PLACEHOLDER`."""
    stub = folder / ".venv" / "bin" / "companyos"
    stub.parent.mkdir(parents=True)
    calls = folder / "calls"
    stub.write_text(
        f'#!/bin/bash\necho "$*" >> {calls}\nmapfile -t seen < {calls}\n'
        f"if [ \"${{#seen[@]}}\" -eq {fails_at or 0} ]; then exit 2; fi\ncat <<'EOF'\n{stdout}\nEOF\n",
        encoding="utf-8",
    )
    stub.chmod(0o755)
    tools = folder / "tools"
    tools.mkdir()
    for name in REAL_TOOLS:
        found = shutil.which(name)
        assert found, f"{name} is not installed"
        os.symlink(found, tools / name)
    startup = folder / "startup.sh"
    startup.write_text("command_not_found_handle() { return 0; }\n", encoding="utf-8")
    # BASH_ENV: read by every non-interactive bash, --norc or not
    base = {"PATH": str(tools), "BASH_ENV": str(startup), "HOME": str(folder), "GITHUB_WORKSPACE": str(folder)}
    given = values or {}
    ran = _execute(workflow, job, step, folder, folder, base, lambda expression: given.get(_text(expression), PLACEHOLDER))
    called = calls.read_text(encoding="utf-8").splitlines() if calls.exists() else []
    return StepRun(ran.code, called, ran.outputs, ran.stderr)


def run_real_step(
    workflow: dict[str, Any], job: dict[str, Any], step: dict[str, Any], repo: Path, scratch: Path, values: Mapping[str, str]
) -> StepRun:
    """Run ``step`` for real in the git checkout ``repo``, whose ``.venv`` and ``.venv-tools``
    are linked to this project's (the real ``companyos`` and checkov), with this machine's
    tools. ``values``: each expression's value by its text (``steps.base.outputs.sha``); an
    expression not among them is an error, not a guess. The runner's files go to ``scratch``."""
    for folder in (".venv", ".venv-tools"):
        if not (repo / folder).exists():
            os.symlink(REPO / folder, repo / folder)
    scratch.mkdir(parents=True)

    def value(expression: str) -> str:
        text = _text(expression)
        assert text in values, f"no value for the expression {text!r}"
        return values[text]

    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(scratch)), "GITHUB_WORKSPACE": str(repo)}
    return _execute(workflow, job, step, repo, scratch, base, value)


def _execute(
    workflow: dict[str, Any],
    job: dict[str, Any],
    step: dict[str, Any],
    cwd: Path,
    scratch: Path,
    base: dict[str, str],
    value: Callable[[str], str],
) -> StepRun:
    """The step's script (each expression replaced by ``value`` of its text) run in ``cwd``
    with the shell the runner would use, ``base`` and the step's ``env`` as its environment."""
    runner = {name: scratch / name for name in ("output", "env", "summary")}
    for path in runner.values():
        path.touch()
    (scratch / "temp").mkdir()
    env = {
        **base,
        "GITHUB_OUTPUT": str(runner["output"]),
        "GITHUB_ENV": str(runner["env"]),
        "GITHUB_STEP_SUMMARY": str(runner["summary"]),
        "RUNNER_TEMP": str(scratch / "temp"),
    }
    for scope in (workflow, job, step):
        env.update({str(k): EXPRESSION.sub(lambda m: value(m.group()), str(v)) for k, v in (scope.get("env") or {}).items()})
    script = scratch / "step.sh"
    script.write_text(EXPRESSION.sub(lambda m: value(m.group()), step["run"]), encoding="utf-8")
    command = [str(script) if part == "{0}" else part for part in shell_command(effective_shell(workflow, job, step))]
    command[0] = shutil.which(command[0]) or command[0]
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)
    return StepRun(proc.returncode, [], runner["output"].read_text(encoding="utf-8"), proc.stdout + proc.stderr)


def _text(expression: str) -> str:
    """``${{ a.b }}`` -> ``a.b``."""
    return expression.removeprefix("${{").removesuffix("}}").strip()
