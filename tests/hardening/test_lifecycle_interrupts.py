"""The tenant lifecycle under Ctrl-C, SIGTERM and git failures (issue 21, item 5).

A Ctrl-C anywhere in ``new-tenant`` must leave exactly one of two states, and say which:
nothing (every file as it was, no branch, HEAD where it was) or the finished change (the
commit on its branch, checked out, the files in the working tree). Git failures -- a stale
lock file before the start or one that appears half-way -- are one ``exit 2`` line naming
the problem, never a traceback, and leave no branch.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import git as gitpython
import pytest
import yaml

from generator import git, pipeline
from helpers.repo import copy_repo, snapshot

ARGS = ("new-tenant", "foo", "--tier", "standard", "--owner", "team-foo@example.com", "--cost-center", "CC-4242", "--no-input")
#: The git commands of the critical section, in order (commit_paths_on_new_branch).
SECTION = ("read-tree", "add", "write-tree", "commit-tree", "branch", "symbolic-ref", "add")
#: Steps after which the branch exists: a signal there lets the section finish.
BRANCH_STEP = SECTION.index("branch")
NOTHING = "every file was restored and no branch was made"
COMMITTED = "interrupted after the change was committed"


@pytest.fixture(scope="module")
def git_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_repo(tmp_path_factory.mktemp("lifecycle-template") / "repo")
    pipeline.render_to_disk(root)
    repo = git.scratch_repo(root)
    repo.git.checkout("-q", "-b", "main")
    repo.git.add("-A")
    repo.git.commit("-q", "-m", "catalog")
    return root


@pytest.fixture
def git_repo(git_template: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "repo"
    shutil.copytree(git_template, dest, symlinks=True)
    return dest


def state(root: Path) -> tuple[str, str, list[str]]:
    repo = gitpython.Repo(root)
    return repo.head.commit.hexsha, repo.active_branch.name, sorted(h.name for h in repo.heads)


def assert_nothing_left(root: Path, before_files: dict[str, bytes], before_git: tuple[str, str, list[str]]) -> None:
    assert state(root) == before_git, "HEAD, branch and branch list are as they were"
    assert snapshot(root) == before_files, "every file is as it was"
    assert not gitpython.Repo(root).is_dirty(untracked_files=True)
    assert not list(root.rglob("*.companyos-tmp")) and not list(root.rglob(".*.companyos-tmp"))


def assert_finished_commit(root: Path, base: str) -> None:
    repo = gitpython.Repo(root)
    assert repo.active_branch.name == "tenant/foo", "HEAD is on the new branch"
    commit = repo.head.commit
    assert [p.hexsha for p in commit.parents] == [base]
    committed = yaml.safe_load((commit.tree / "tenants/foo.yaml").data_stream.read())
    assert committed["name"] == "foo"
    assert (root / "tenants/foo.yaml").is_file(), "the working tree keeps the committed files (not rolled back)"
    assert not repo.is_dirty(untracked_files=True), "working tree and index match the commit"
    assert "tenant/foo" in commit.message or "Add tenant foo" in commit.message


def patch_git(monkeypatch: pytest.MonkeyPatch, at: int, action: Callable[[], None], *, after: bool) -> list[str]:
    """Run ``action`` before (or after) the ``at``-th git command of the critical section."""
    calls: list[str] = []
    real = git.run_git
    inside = {"on": False}
    real_commit = git.commit_paths_on_new_branch

    def commit(*args: object, **kwargs: object) -> str:
        inside["on"] = True
        try:
            return real_commit(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            inside["on"] = False

    def run(repo: object, *args: str, env: dict[str, str] | None = None) -> str:
        if not inside["on"] or args[0] not in SECTION:
            return real(repo, *args, env=env)  # type: ignore[arg-type]
        step = len(calls)
        calls.append(args[0])
        if step == at and not after:
            action()
        out = real(repo, *args, env=env)  # type: ignore[arg-type]
        if step == at and after:
            action()
        return out

    monkeypatch.setattr(git, "run_git", run)
    monkeypatch.setattr(git, "commit_paths_on_new_branch", commit)
    return calls


def send(sig: int) -> Callable[[], None]:
    return lambda: os.kill(os.getpid(), sig)


def raise_interrupt() -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("at", range(len(SECTION)), ids=[f"{i}-{c}" for i, c in enumerate(SECTION)])
def test_signal_in_git_section_leaves_nothing_or_the_finished_commit(git_repo, companyos, monkeypatch, at, sig):
    before_files, before_git = snapshot(git_repo), state(git_repo)
    calls = patch_git(monkeypatch, at, send(sig), after=True)
    res = companyos(*ARGS, cwd=git_repo)
    assert res.code == 130, res.err
    assert "Traceback" not in res.err and len(res.err.strip().splitlines()) == 1, res.err
    if at < BRANCH_STEP:  # no branch yet: the section stops at its checkpoint and rolls back
        assert NOTHING in res.err
        assert calls == list(SECTION[:BRANCH_STEP]), "no ref was touched: the section stopped before `git branch`"
        assert_nothing_left(git_repo, before_files, before_git)
    else:  # the branch exists: the section finishes, then the signal is acted on
        assert COMMITTED in res.err and "tenant/foo" in res.err, res.err
        assert calls == list(SECTION)
        sha = gitpython.Repo(git_repo).head.commit.hexsha
        assert sha[:12] in res.err, "the message names the commit that exists"
        assert_finished_commit(git_repo, before_git[0])


@pytest.mark.parametrize("at", range(len(SECTION)), ids=[f"{i}-{c}" for i, c in enumerate(SECTION)])
def test_keyboard_interrupt_raised_by_a_git_step_undoes_everything(git_repo, companyos, monkeypatch, at):
    """A KeyboardInterrupt that is not a signal (raised inside a step) cannot be deferred:
    whatever the step, the branch, HEAD, index and files go back as they were."""
    before_files, before_git = snapshot(git_repo), state(git_repo)
    patch_git(monkeypatch, at, raise_interrupt, after=False)
    res = companyos(*ARGS, cwd=git_repo)
    assert res.code == 130 and NOTHING in res.err, res.err
    assert "Traceback" not in res.err
    assert_nothing_left(git_repo, before_files, before_git)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_render_before_the_git_section_restores_everything(git_repo, companyos, monkeypatch, sig):
    """Outside the critical section both signals stop the command at once (SIGTERM too: the
    entry point makes it an interrupt, not a kill mid-write) and the files are restored."""
    from generator.lifecycle import transaction

    before_files, before_git = snapshot(git_repo), state(git_repo)
    real = transaction.render_tracked

    def render_then_ctrl_c(root, tx):  # type: ignore[no-untyped-def]
        out = real(root, tx)
        os.kill(os.getpid(), sig)  # not deferred here: KeyboardInterrupt right away
        return out

    monkeypatch.setattr("generator.lifecycle.new_tenant.render_tracked", render_then_ctrl_c)
    res = companyos(*ARGS, cwd=git_repo)
    assert res.code == 130 and NOTHING in res.err, res.err
    assert_nothing_left(git_repo, before_files, before_git)


def test_stale_index_lock_is_exit_2_naming_the_file_and_nothing_is_made(git_repo, companyos):
    lock = git_repo / ".git" / "index.lock"
    lock.write_bytes(b"")
    before_files, before_git = snapshot(git_repo), state(git_repo)
    res = companyos(*ARGS, cwd=git_repo)
    assert res.code == 2, res.err
    assert str(lock) in res.err and "rm " in res.err, "names the file and how to fix it"
    assert "Traceback" not in res.err and "GitCommandError" not in res.err
    assert_nothing_left(git_repo, before_files, before_git)
    lock.unlink()
    assert companyos(*ARGS, cwd=git_repo).code == 0, "after removing the lock the same command works"


@pytest.mark.parametrize("lock_name", ["HEAD.lock", "refs/heads/tenant/foo.lock", "packed-refs.lock"])
def test_any_git_lock_file_is_refused_before_anything_is_written(git_repo, companyos, lock_name):
    lock = git_repo / ".git" / lock_name
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_bytes(b"")
    before_files, before_git = snapshot(git_repo), state(git_repo)
    res = companyos(*ARGS, cwd=git_repo)
    assert res.code == 2 and str(lock) in res.err, res.err
    assert_nothing_left(git_repo, before_files, before_git)


@pytest.mark.parametrize("names", [("index.lock",), ("HEAD.lock",)], ids=["index", "HEAD"])
@pytest.mark.parametrize("at", range(len(SECTION)), ids=[f"{i}-{c}" for i, c in enumerate(SECTION)])
def test_lock_file_appearing_mid_section_is_exit_2_and_leaves_nothing(git_repo, companyos, monkeypatch, at, names):
    """Another git process takes a lock while the section runs and keeps it: git fails (after
    waiting a moment), the command undoes what it did and says so in one line."""
    monkeypatch.setattr(git, "LOCK_WAIT_SECONDS", 0.2)
    locks = [git_repo / ".git" / name for name in names]

    def take_locks() -> None:
        for lock in locks:
            lock.write_bytes(b"")

    before_files, before_git = snapshot(git_repo), state(git_repo)
    calls = patch_git(monkeypatch, at, take_locks, after=False)
    res = companyos(*ARGS, cwd=git_repo)
    for lock in locks:
        lock.unlink()
    # The last step that needs each lock (the first `add` writes a private index).
    last_use = {"index.lock": len(SECTION) - 1, "HEAD.lock": SECTION.index("symbolic-ref")}
    if at > last_use[names[0]]:  # nothing after this step needs the lock
        assert res.code == 0, res.err
        assert_finished_commit(git_repo, before_git[0])
        return
    assert res.code == 2, res.err
    assert "Traceback" not in res.err and names[0] in res.err and "every change was undone" in res.err, res.err
    assert "branch" in calls[calls.index("commit-tree") :], "it failed after the branch existed"
    assert_nothing_left(git_repo, before_files, before_git)


def test_locks_that_block_the_undo_too_are_named_not_hidden(git_repo, companyos, monkeypatch):
    """index.lock and HEAD.lock both taken after HEAD moved: HEAD cannot be put back. The
    command says exactly what it could not undo and how, in one exit-2 message."""
    monkeypatch.setattr(git, "LOCK_WAIT_SECONDS", 0.2)
    locks = [git_repo / ".git" / "index.lock", git_repo / ".git" / "HEAD.lock"]
    patch_git(monkeypatch, SECTION.index("add", 2), lambda: [lock.write_bytes(b"") for lock in locks], after=False)
    res = companyos(*ARGS, cwd=git_repo)
    for lock in locks:
        lock.unlink()
    assert res.code == 2 and "Traceback" not in res.err, res.err
    assert "could not undo" in res.err and "HEAD" in res.err and "tenant/foo" in res.err and "by hand" in res.err, res.err


def test_a_failing_git_command_outside_the_section_is_exit_2_without_traceback(git_repo, companyos, monkeypatch):
    def broken(repo, *args, env=None):  # type: ignore[no-untyped-def]
        raise gitpython.GitCommandError(["git", args[0]], 128, b"fatal: unable to read tree 1234")

    monkeypatch.setattr(git, "run_git", broken)
    before_files, before_git = snapshot(git_repo), state(git_repo)
    res = companyos(*ARGS, cwd=git_repo)
    assert res.code == 2 and "unable to read tree" in res.err and "Traceback" not in res.err, res.err
    assert_nothing_left(git_repo, before_files, before_git)


# --- a real terminal Ctrl-C, in a subprocess ------------------------------------------------

_SLOW_GIT = """
import sys, time
from pathlib import Path
from generator import git
marks = Path(sys.argv[1])
real = git.run_git
def slow(repo, *args, env=None):
    with marks.open("a") as fh:
        fh.write(args[0] + "\\n")
    time.sleep(0.3)
    return real(repo, *args, env=env)
git.run_git = slow
sys.argv = ["companyos", *sys.argv[2:]]
from generator.cli import main
main()
"""


@pytest.mark.parametrize("when", ["commit-tree", "symbolic-ref"])
def test_terminal_ctrl_c_reaches_the_process_group_and_the_outcome_is_whole(git_repo, tmp_path, when):
    """Ctrl-C at a terminal signals the whole foreground process group, git children
    included. Whether it lands before or after the branch exists, the result is whole and
    the one line printed says which."""
    marks = tmp_path / "marks"
    before_files, before_git = snapshot(git_repo), state(git_repo)
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_GIT, str(marks), *ARGS],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a terminal job
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        seen = marks.read_text().split() if marks.exists() else []
        if when in seen:
            os.killpg(proc.pid, signal.SIGINT)
            break
        time.sleep(0.02)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (proc.returncode, out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    if when == "commit-tree":
        assert NOTHING in err
        assert_nothing_left(git_repo, before_files, before_git)
    else:
        assert COMMITTED in err
        assert_finished_commit(git_repo, before_git[0])


def test_ctrl_c_during_startup_is_one_line_and_exit_130(tmp_path):
    """A Ctrl-C while the command line's imports load (before main() can catch anything)."""
    code = (
        "import os, signal, builtins\n"
        "real = builtins.__import__\n"
        "def imp(name, *a, **k):\n"
        "    if name == 'typer':\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = imp\n"
        "from generator.cli import main\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130, proc
    assert proc.stderr.strip() == "companyos: interrupted; nothing was written", proc.stderr
