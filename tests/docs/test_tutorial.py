"""docs/tutorial.md is run, not just read: its console blocks are replayed in a scratch clone.

Every fenced block opened with ```console is a transcript: a line ``$ command`` (continued by a
trailing backslash or a ``<<'EOF'`` heredoc body) followed by the output the command prints,
stdout and stderr interleaved as a terminal shows them. The steps run in order, in one scratch
git repository made from the checkout's inputs and committed output on branch ``main``, so the
tutorial's state carries from step to step exactly as it does for a reader. A step must exit 0,
unless its command ends with a comment ``# exit N``. Other fenced blocks (```sh) are prose.

Plain ``companyos ...`` commands run in-process through :func:`generator.cli.main` (as the
``companyos`` fixture does, but with both streams in one buffer so their order is kept);
anything with shell syntax (pipes, ``&&``, redirections, heredocs) and every other program
runs under ``bash -c``, with a ``companyos`` on PATH that runs this interpreter.

Real output is compared with the block after :func:`normalise`, which masks only what
legitimately differs from one run (or reader) to the next -- see ``NORMALISE``. With
``COMPANYOS_UPDATE_TUTORIAL=1`` the test rewrites the outputs in docs/tutorial.md instead of
failing (exit-status mismatches still fail: they mean the prose around the step is wrong).
"""

from __future__ import annotations

import contextlib
import difflib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from generator import git, pipeline
from helpers.repo import REPO, copy_repo

TUTORIAL = REPO / "docs" / "tutorial.md"
UPDATE_VARIABLE = "COMPANYOS_UPDATE_TUTORIAL"
#: Where the tutorial tells the reader to clone; the scratch path is shown as this.
CLONE = "~/companyos"

#: What may differ between two honest runs, masked on both sides before comparing (lines are
#: also stripped of trailing blanks, which editors remove from markdown):
#: * ISO dates and timestamps (waiver expiry, change windows, "today");
#: * git object ids, full or abbreviated (7-64 hex digits as a word): commits are made at run
#:   time, so their ids differ every run. A 7+ digit decimal number is masked too, which only
#:   weakens the comparison of such a number, never fails it.
NORMALISE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"), "<date>"),
    (re.compile(r"\b[0-9a-f]{7,64}\b"), "<hash>"),
)
#: ``# exit N`` at the end of a command: the exit status the step must have (default 0).
EXIT_NOTE = re.compile(r"#\s*exit (\d+)\s*$")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")
#: Shell syntax that needs bash rather than the in-process CLI.
SHELL_CHARS = set("|&;<>()$`*?~{}")

#: A reader's shell and git configuration must not change what they see: no colour, English
#: messages, no global/system git config (aliases, log decoration, merge.stat), and no git
#: variables pointing at another repository (the test may itself run from a git hook).
ENVIRONMENT = {
    "NO_COLOR": "1",
    "TERM": "dumb",
    "LC_ALL": "C",
    "PYTHONUTF8": "1",
    "PYTHONUNBUFFERED": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
UNSET = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
    "FORCE_COLOR",
    "CLICOLOR_FORCE",
)


@dataclass
class Step:
    """One ``$ command`` of the tutorial and the output lines the file shows for it."""

    command: str
    line: int  # 1-based line of the ``$`` in docs/tutorial.md
    exit_code: int
    start: int  # output lines are lines[start:end] of the file
    end: int
    expected: list[str]


def parse(text: str) -> list[Step]:
    """The console steps of a markdown text, in order."""
    lines = text.split("\n")
    steps: list[Step] = []
    i, in_block = 0, False
    while i < len(lines):
        line = lines[i]
        if not in_block:
            in_block = line.strip() == "```console"
            i += 1
            continue
        if line.startswith("```"):
            in_block = False
            i += 1
            continue
        if not line.startswith("$ "):
            raise AssertionError(f"docs/tutorial.md:{i + 1}: output before any `$ command` in a console block")
        first = i
        command = [line[2:]]
        i += 1
        while command[-1].endswith("\\") and i < len(lines):
            command.append(lines[i])
            i += 1
        heredoc = HEREDOC.search("\n".join(command))
        if heredoc:
            while i < len(lines) and lines[i].strip() != heredoc.group(2):
                command.append(lines[i])
                i += 1
            command.append(lines[i] if i < len(lines) else "")
            i += 1
        start = i
        while i < len(lines) and not lines[i].startswith(("$ ", "```")):
            i += 1
        note = EXIT_NOTE.search(command[-1] if not heredoc else command[0])
        steps.append(Step("\n".join(command), first + 1, int(note.group(1)) if note else 0, start, i, lines[start:i]))
    assert not in_block, "docs/tutorial.md: a ```console block is not closed"
    return steps


def normalise(lines: list[str]) -> list[str]:
    """Mask what varies between runs (``NORMALISE``), drop trailing blanks and blank end lines."""
    out = []
    for line in lines:
        for pattern, replacement in NORMALISE:
            line = pattern.sub(replacement, line)
        out.append(line.rstrip())
    while out and not out[-1]:
        out.pop()
    return out


def in_process_argv(command: str) -> list[str] | None:
    """The arguments of a plain ``companyos ...`` command, or None when it needs a shell."""
    text = EXIT_NOTE.sub("", command.replace("\\\n", " ")).strip()
    if "\n" in text or SHELL_CHARS & set(text):
        return None
    words = shlex.split(text, comments=True)
    return words[1:] if words and words[0] == "companyos" else None


def run_in_process(argv: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """``companyos ARGV`` through the real entry point, stdout and stderr in one buffer."""
    from generator import cli

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["companyos", *argv])
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, buffer.getvalue()


def run_in_bash(command: str, cwd: Path) -> tuple[int, str]:
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )
    return proc.returncode, proc.stdout


def shim(bin_dir: Path) -> None:
    """A ``companyos`` executable that runs the generator under test with this interpreter."""
    bin_dir.mkdir()
    script = bin_dir / "companyos"
    code = "import sys; sys.argv[0] = 'companyos'; from generator.cli import main; main()"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -c {shlex.quote(code)} "$@"\n', encoding="utf-8")
    script.chmod(0o755)


def scratch_clone(root: Path) -> None:
    """What a reader has after ``git clone`` and ``make render``: the inputs and the rendered
    tree (rendered again here, so the tutorial does not fail while the checkout's committed
    tree lags behind a catalog edit), committed on ``main``."""
    copy_repo(root)
    shutil.copy2(REPO / ".gitignore", root / ".gitignore")
    pipeline.render_to_disk(root)
    repo = git.scratch_repo(root)  # fixed identity, no signing, no hooks
    repo.git.checkout("-q", "-b", "main")
    repo.git.add("-A")
    repo.git.commit("-q", "-m", "Platform catalog")


def rewrite(text: str, replacements: list[tuple[Step, list[str]]]) -> str:
    """``text`` with each step's output lines replaced (bottom-up, so spans stay valid)."""
    lines = text.split("\n")
    for step, output in sorted(replacements, key=lambda item: item[0].start, reverse=True):
        lines[step.start : step.end] = output
    return "\n".join(lines)


def test_tutorial_transcript_is_real_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every console step of docs/tutorial.md in a scratch clone and compare its output."""
    text = TUTORIAL.read_text(encoding="utf-8")
    steps = parse(text)
    assert len(steps) >= 10, "docs/tutorial.md lost its console steps"

    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    shim(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "companyos"
    scratch_clone(root)

    failures: list[str] = []
    replacements: list[tuple[Step, list[str]]] = []
    for step in steps:
        argv = in_process_argv(step.command)
        code, output = run_in_process(argv, root, monkeypatch) if argv is not None else run_in_bash(step.command, root)
        actual = [line.rstrip() for line in output.replace(str(root), CLONE).split("\n")]
        while actual and not actual[-1]:
            actual.pop()
        where = f"docs/tutorial.md:{step.line}: $ {step.command.splitlines()[0]}"
        if code != step.exit_code:
            failures.append(f"{where}\nexit status {code}, the tutorial says {step.exit_code}; output:\n{output}")
        if normalise(actual) != normalise(step.expected):
            replacements.append((step, actual))
            diff = difflib.unified_diff(normalise(step.expected), normalise(actual), "tutorial", "real output", lineterm="")
            failures.append(f"{where}\n" + "\n".join(diff))

    if os.environ.get(UPDATE_VARIABLE) == "1" and replacements:
        TUTORIAL.write_text(rewrite(text, replacements), encoding="utf-8")
        warnings.warn(f"rewrote the output of {len(replacements)} step(s) in docs/tutorial.md", stacklevel=1)
        failures = [f for f in failures if "\nexit status " in f]
    assert not failures, (
        f"docs/tutorial.md does not match what the commands print (rerun with {UPDATE_VARIABLE}=1 to "
        "rewrite the outputs, then review the prose around them):\n\n" + "\n\n".join(failures)
    )


def test_parse_reads_continuations_heredocs_and_exit_notes() -> None:
    """The transcript reader itself: a backslash continues a command, a heredoc body belongs to
    its command, ``# exit N`` sets the expected status, and output runs to the next ``$``."""
    text = "\n".join(
        [
            "prose",
            "```sh",
            "$ not run",
            "```",
            "```console",
            "$ companyos new-tenant x \\",
            "    --no-input",
            "created x",
            "$ cat >> f <<'EOF'",
            "a: 1",
            "$ not a command",
            "EOF",
            "$ companyos check  # exit 1",
            "changed f",
            "",
            "```",
        ]
    )
    steps = parse(text)
    assert [s.command for s in steps] == [
        "companyos new-tenant x \\\n    --no-input",
        "cat >> f <<'EOF'\na: 1\n$ not a command\nEOF",
        "companyos check  # exit 1",
    ]
    assert [s.expected for s in steps] == [["created x"], [], ["changed f", ""]]
    assert [s.exit_code for s in steps] == [0, 0, 1]
    assert in_process_argv(steps[0].command) == ["new-tenant", "x", "--no-input"]
    assert in_process_argv(steps[1].command) is None
    assert in_process_argv(steps[2].command) == ["check"]
    assert in_process_argv("companyos policy list | head") is None
    assert normalise(["committed 3 files as 633f927652a8 on 2025-01-31  ", ""]) == ["committed 3 files as <hash> on <date>"]
    assert normalise(["rendered 237 files, 4,500.00 USD"]) == ["rendered 237 files, 4,500.00 USD"]
    assert rewrite(text, [(steps[2], ["ok"])]).split("\n")[-3:] == ["$ companyos check  # exit 1", "ok", "```"]
