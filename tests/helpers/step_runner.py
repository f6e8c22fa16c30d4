"""Run a workflow's ``run:`` step the way a GitHub-hosted Linux runner does: the shell its
``shell`` (or the job's or workflow's ``defaults.run.shell``) names, with the runner's default
options, the step's ``env``, and the runner's files (``$GITHUB_OUTPUT``, ``$RUNNER_TEMP``).

No cloud or cluster is here: ``companyos`` (``.venv/bin/companyos``) is a stub that records its
arguments, prints ``stdout`` and exits with ``code``; a few plain tools are the real ones
(``REAL_TOOLS``), and any other command (``aws``, ``kubectl``, ``gh``, ``git``...) does nothing
and succeeds (bash's ``command_not_found_handle``), so what is asked is only how the step's own
script treats the stub's answer. ``${{ ... }}`` expressions become :data:`PLACEHOLDER`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    stderr: str


def run_step(workflow: dict[str, Any], job: dict[str, Any], step: dict[str, Any], folder: Path, *, code: int, stdout: str) -> StepRun:
    """Run ``step`` (of ``job`` in ``workflow``) in the empty ``folder`` with the stub answering
    ``stdout`` and exit ``code``."""
    stub = folder / ".venv" / "bin" / "companyos"
    stub.parent.mkdir(parents=True)
    calls = folder / "calls"
    stub.write_text(f"#!/bin/bash\necho \"$*\" >> {calls}\ncat <<'EOF'\n{stdout}\nEOF\nexit {code}\n", encoding="utf-8")
    stub.chmod(0o755)
    tools = folder / "tools"
    tools.mkdir()
    for name in REAL_TOOLS:
        found = shutil.which(name)
        assert found, f"{name} is not installed"
        os.symlink(found, tools / name)
    startup = folder / "startup.sh"
    startup.write_text("command_not_found_handle() { return 0; }\n", encoding="utf-8")
    runner = {name: folder / name for name in ("output", "env", "summary")}
    for path in runner.values():
        path.touch()
    (folder / "temp").mkdir()
    env = {
        "PATH": str(tools),
        "BASH_ENV": str(startup),  # read by every non-interactive bash, --norc or not
        "HOME": str(folder),
        "GITHUB_OUTPUT": str(runner["output"]),
        "GITHUB_ENV": str(runner["env"]),
        "GITHUB_STEP_SUMMARY": str(runner["summary"]),
        "RUNNER_TEMP": str(folder / "temp"),
        "GITHUB_WORKSPACE": str(folder),
    }
    for scope in (workflow, job, step):
        env.update({str(k): EXPRESSION.sub(PLACEHOLDER, str(v)) for k, v in (scope.get("env") or {}).items()})
    script = folder / "step.sh"
    script.write_text(EXPRESSION.sub(PLACEHOLDER, step["run"]), encoding="utf-8")
    command = [str(script) if part == "{0}" else part for part in shell_command(effective_shell(workflow, job, step))]
    command[0] = shutil.which(command[0]) or command[0]
    proc = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=60, check=False)
    called = calls.read_text(encoding="utf-8").splitlines() if calls.exists() else []
    return StepRun(proc.returncode, called, runner["output"].read_text(encoding="utf-8"), proc.stderr)
